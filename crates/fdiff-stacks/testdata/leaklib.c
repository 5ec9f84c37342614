/* The shared library between the two paths: both open through here, so the library frame is
   the same and only the caller tells them apart. */
#include <fcntl.h>

__attribute__((noinline)) int lib_open(const char *path) {
    return open(path, O_RDONLY | O_CLOEXEC);
}
