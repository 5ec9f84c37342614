# issue 12's gunicorn case: a WSGI app whose /upload handler opens the PDF with pypdfium2 and
# keeps the document (so its file stays open), while /pages closes it. Run under gunicorn's
# gthread worker; PDF12 names the PDF (made at import when missing).
import os

import pypdfium2 as pdfium

PDF = os.environ["PDF12"]
if not os.path.exists(PDF):
    doc = pdfium.PdfDocument.new()
    doc.new_page(200, 200)
    doc.save(PDF)
    doc.close()

kept = []


def render_upload(path):
    pdf = pdfium.PdfDocument(path)
    kept.append(pdf)
    return len(pdf)


def count_pages(path):
    pdf = pdfium.PdfDocument(path)
    try:
        return len(pdf)
    finally:
        pdf.close()


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/upload":
        n = render_upload(PDF)
    else:
        n = count_pages(PDF)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d\n" % n]
