//! Socket decoder (placeholder until the sock_diag branch lands).
use super::model::SocketDetail;
#[derive(Default)]
pub struct SocketDecoder;
impl SocketDecoder {
    pub fn new() -> Self {
        SocketDecoder
    }
    pub fn decode(&mut self, _pid: i32, inodes: &[u64]) -> Vec<SocketDetail> {
        inodes
            .iter()
            .map(|&inode| SocketDetail {
                proto: "unknown".into(),
                inode,
                ..Default::default()
            })
            .collect()
    }
}
