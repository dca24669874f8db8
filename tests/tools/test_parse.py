"""Parsing real files of each format file_search accepts, made here by the libraries that write
them (fpdf2, pypdf, python-docx, zipfile): their text, and every refusal's message."""

from __future__ import annotations

import codecs
import io
import json
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docx
import pypdf
import pytest
from fpdf import FPDF
from PIL import Image

from threadline.tools.file_search.parse import (
    DOCX_MAX_UNCOMPRESSED_BYTES,
    NO_TEXT_LAYER,
    SUPPORTED_EXTENSIONS,
    Document,
    ParseError,
    parse,
    supported,
)

pytestmark = pytest.mark.timeout(120)


def pdf_with_pages(*pages: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def encrypted(pdf: bytes, *, user_password: str, algorithm: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(document: docx.document.Document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- which files ---


def test_supported_by_extension_whatever_its_case() -> None:
    for name in ["a.PDF", "notes.Md", "dir/x.markdown", "C:\\docs\\report.docx", "data.JSON"]:
        assert supported(name), name
    for name in ["a.exe", "archive.zip", "README", "photo.png", "a.pdf.zip", ".", "pdf"]:
        assert not supported(name), name
    assert {".pdf", ".docx", ".json", ".csv", ".html", ".md", ".py", ".yml"} <= (
        SUPPORTED_EXTENSIONS
    )


def test_an_unsupported_type_is_refused_by_name() -> None:
    with pytest.raises(ParseError, match=r"files '\.exe' are not supported"):
        parse("setup.exe", b"MZ\x90\x00")
    with pytest.raises(ParseError, match="without an extension"):
        parse("README", b"hello")


@pytest.mark.parametrize("ext", sorted(SUPPORTED_EXTENSIONS))
def test_an_empty_file_of_any_type_is_refused(ext: str) -> None:
    with pytest.raises(ParseError, match=r"^the file is empty$"):
        parse(f"empty{ext}", b"")


# --- text ---


def test_text_is_kept_as_written_with_line_ends_made_uniform() -> None:
    document = parse("notes.txt", "first line\r\nsecond — ünïcode\rthird\n".encode())
    assert document == Document(pages=("first line\nsecond — ünïcode\nthird\n",), note=None)
    assert document.text == "first line\nsecond — ünïcode\nthird\n"


def test_markdown_and_code_are_text() -> None:
    markdown = "# Title\n\n- item *one*\n- item `two`\n"
    assert parse("README.MD", markdown.encode()).text == markdown
    code = "def add(a: int, b: int) -> int:\n    return a + b\n"
    for name in ["add.py", "add.rs", "conf.yaml", "Main.java", "query.sql", "page.XML"]:
        assert parse(name, code.encode()).pages == (code,)


@pytest.mark.parametrize(
    "encoded",
    [
        codecs.BOM_UTF8 + "héllo wörld".encode(),
        "héllo wörld".encode("utf-16"),  # with the platform's byte order mark
        codecs.BOM_UTF16_LE + "héllo wörld".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "héllo wörld".encode("utf-16-be"),
    ],
)
def test_byte_order_marks_are_honoured_and_dropped(encoded: bytes) -> None:
    assert parse("a.txt", encoded).text == "héllo wörld"


def test_text_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ParseError, match="not UTF-8 text"):
        parse("latin1.txt", "café crème".encode("latin-1"))
    with pytest.raises(ParseError, match="not UTF-8 text"):
        parse("noise.md", bytes(range(128, 256)))


def test_a_binary_file_named_as_text_is_refused() -> None:
    with pytest.raises(ParseError, match="binary"):
        parse("program.py", b"\x7fELF\x02\x01\x01\x00\x00\x00")


def test_whitespace_only_text_parses_with_a_note() -> None:
    document = parse("blank.txt", b" \n\t\n")
    assert document.text.strip() == ""
    assert document.note == "the file has no text; nothing to index"


# --- HTML ---


def test_html_gives_visible_text_a_line_per_block() -> None:
    page = """<!doctype html>
    <html><head><title>The  Page</title>
      <style>body { color: red }</style>
      <script>var secret = "do not index";</script>
      <meta name="description" content="not shown">
    </head>
    <body>
      <h1>Heading</h1>
      <p>A paragraph with <b>bold</b> and <a href="/x">a link</a>,
         spread over   two lines.</p>
      <!-- a comment -->
      <ul><li>one</li><li>two</li></ul>
      <table><tr><th>name</th><th>size</th></tr><tr><td>a</td><td>1</td></tr></table>
      <div hidden>hidden text</div>
      <noscript>enable scripts</noscript>
      <p>line<br>break &amp; entity</p>
      <pre>keep
  these lines</pre>
      <script type="module">import x from "y";</script>
    </body></html>"""
    text = parse("page.HTML", page.encode()).text
    assert text.split("\n") == [
        "The Page",
        "Heading",
        "A paragraph with bold and a link, spread over two lines.",
        "one",
        "two",
        "name",
        "size",
        "a",
        "1",
        "line",
        "break & entity",
        "keep",
        "these lines",
    ]


def test_deeply_nested_html_is_read_without_recursion() -> None:
    page = "<div>" * 5000 + "deep text" + "</div>" * 5000
    assert parse("deep.htm", page.encode()).text == "deep text"


# --- JSON and CSV ---


def test_json_is_pretty_printed_so_keys_and_values_are_searchable() -> None:
    value = {"name": "Ada", "tags": ["math", "engines"], "nested": {"año": 1843}}
    text = parse("ada.json", json.dumps(value, separators=(",", ":")).encode()).text
    assert text == json.dumps(value, indent=2, ensure_ascii=False)
    assert '  "name": "Ada",' in text.split("\n")


def test_invalid_json_is_refused_with_where() -> None:
    with pytest.raises(ParseError, match=r"not valid JSON: .* line 2 column"):
        parse("bad.json", b'{"a": 1,\n "b": }')


def test_csv_rows_describe_themselves() -> None:
    table = (
        "name,city,note\r\n"
        'Ada,London,"wrote, famously, notes"\r\n'
        "\r\n"
        'Grace,,"multi\nline"\r\n'
        "Alan,Wilmslow,,extra\r\n"
    )
    assert parse("people.csv", table.encode()).text.split("\n") == [
        "name: Ada; city: London; note: wrote, famously, notes",
        "name: Grace; note: multi line",
        "name: Alan; city: Wilmslow; column 4: extra",
    ]


def test_a_csv_of_only_a_header_keeps_the_header() -> None:
    assert parse("empty.csv", b"id,title\n").text == "id; title"


# --- PDF ---


def test_pdf_text_page_by_page() -> None:
    data = pdf_with_pages("The first page talks about apples.", "The second is about pears.")
    document = parse("fruit.PDF", data)
    assert len(document.pages) == 2
    assert "first page talks about apples" in document.pages[0]
    assert "second is about pears" in document.pages[1]
    assert document.note is None
    assert document.text == document.pages[0] + "\n\n" + document.pages[1]


def test_an_image_only_pdf_parses_with_a_note_not_an_error() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(200, 30, 30)
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.add_page()
    pdf.image(Image.new("RGB", (120, 80), (10, 120, 200)), x=20, y=20, w=100)
    document = parse("scan.pdf", bytes(pdf.output()))
    assert len(document.pages) == 2
    assert all(page.strip() == "" for page in document.pages)
    assert document.note == NO_TEXT_LAYER


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_a_pdf_encrypted_with_a_password_is_refused(algorithm: str) -> None:
    data = encrypted(pdf_with_pages("secret plans"), user_password="s3cret", algorithm=algorithm)
    with pytest.raises(ParseError, match="encrypted with a password"):
        parse("locked.pdf", data)


def test_a_pdf_encrypted_without_a_user_password_is_read() -> None:
    data = encrypted(pdf_with_pages("open to all readers"), user_password="", algorithm="AES-128")
    assert "open to all readers" in parse("owner-only.pdf", data).text


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.1])
def test_a_truncated_pdf_is_refused(keep: float) -> None:
    data = pdf_with_pages("some text " * 50, "more text " * 50)
    with pytest.raises(ParseError, match="the PDF could not be read"):
        parse("cut.pdf", data[: int(len(data) * keep)])


def test_a_file_that_is_not_a_pdf_is_refused() -> None:
    with pytest.raises(ParseError, match="the PDF could not be read"):
        parse("fake.pdf", b"this is plain text, not a PDF at all\n" * 20)


def test_pdfs_parsed_in_several_threads_at_once_read_as_one_at_a_time() -> None:
    """Ingestion parses in worker threads, and PDFium must not be called from two at once:
    parsing serialises itself, so every thread reads its file whole."""
    files = [pdf_with_pages(*(f"file {n} page {p} " * 40 for p in range(6))) for n in range(8)]
    alone = [parse("a.pdf", data) for data in files]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(lambda data: parse("a.pdf", data), files)) == alone


# --- DOCX ---


def test_docx_paragraphs_and_table_cells_in_order() -> None:
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Sales rose in the north.")
    table = document.add_table(rows=2, cols=3)
    for row, values in zip(
        table.rows, [["region", "sales", ""], ["north", "120", "up"]], strict=True
    ):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    table.rows[0].cells[1].merge(table.rows[0].cells[2])
    table.rows[1].cells[2].add_paragraph("a second paragraph in a cell")
    document.add_paragraph("After the table.")
    text = parse("report.docx", docx_bytes(document)).text
    assert text.split("\n") == [
        "Quarterly report",
        "Sales rose in the north.",
        "region | sales",
        "north | 120 | up a second paragraph in a cell",
        "After the table.",
    ]


def test_an_empty_docx_parses_with_a_note() -> None:
    document = parse("blank.docx", docx_bytes(docx.Document()))
    assert document.text == ""
    assert document.note is not None


def test_a_file_that_is_not_a_zip_is_not_a_docx() -> None:
    with pytest.raises(ParseError, match="not a zip archive"):
        parse("report.docx", b"just some text pretending to be a document")


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(ParseError, match="not a Word"):
        parse("report.docx", out.getvalue())


def test_a_large_repetitive_docx_is_read_though_it_compresses_well() -> None:
    """Generated documents (forms, exports) repeat the same XML and compress far better than
    prose; below the size where inflating could hurt, no ratio refuses them."""
    document = docx.Document()
    line = "The same long line of a generated report, repeated for every record. " * 12
    document.add_paragraph(line.strip())
    template = docx_bytes(document)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(template)) as real,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for entry in real.infolist():
            data = real.read(entry)
            if entry.filename == "word/document.xml":
                body = data.decode()
                paragraph = body[body.index("<w:p>") : body.index("</w:p>") + len("</w:p>")]
                data = body.replace(paragraph, paragraph * 2000).encode()
            archive.writestr(entry, data, zipfile.ZIP_DEFLATED)
    data = out.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.getinfo("word/document.xml")
    assert xml.file_size > 1024 * 1024 and xml.file_size > 100 * xml.compress_size
    assert parse("export.docx", data).text.split("\n") == [line.strip()] * 2000


def _zip_of_zeros(path: Path, name: str, size: int) -> bytes:
    """A real docx with one entry of `size` zero bytes added, written a megabyte at a time
    so that nothing of that size is ever held in memory."""
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes(docx.Document()))) as real,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for entry in real.infolist():
            archive.writestr(entry, real.read(entry))
        block = bytes(1024 * 1024)
        with archive.open(name, "w", force_zip64=True) as bomb:
            for _ in range(size // len(block)):
                bomb.write(block)
    return path.read_bytes()


def test_a_zip_bomb_docx_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    size = 300 * 1024 * 1024
    assert size > DOCX_MAX_UNCOMPRESSED_BYTES
    data = _zip_of_zeros(tmp_path / "bomb.docx", "word/media/zeros.bin", size)
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(ParseError, match=r"would inflate to \d+ bytes"):
        parse("bomb.docx", data)


def test_a_docx_entry_compressed_absurdly_is_refused(tmp_path: Path) -> None:
    data = _zip_of_zeros(tmp_path / "dense.docx", "word/media/zeros.bin", 16 * 1024 * 1024)
    with pytest.raises(ParseError, match="compressed more than 100:1"):
        parse("dense.docx", data)


def test_a_docx_whose_directory_understates_an_entry_is_refused(tmp_path: Path) -> None:
    """The central directory says 1,000 bytes (with their CRC) where 64 MB of zeros are
    compressed: read whole, zipfile would inflate all of them before cutting to 1,000."""
    name = "word/media/zeros.bin"
    data = bytearray(_zip_of_zeros(tmp_path / "liar.docx", name, 64 * 1024 * 1024))
    record = data.rindex(name.encode()) - 46  # the central directory's record for it
    assert data[record : record + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, record + 16, zlib.crc32(bytes(1000)))
    struct.pack_into("<I", data, record + 24, 1000)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert archive.getinfo(name).file_size == 1000
    with pytest.raises(ParseError, match="holds more data than the archive's directory says"):
        parse("liar.docx", bytes(data))


def test_a_docx_with_a_damaged_entry_is_refused() -> None:
    data = bytearray(docx_bytes(docx.Document()))
    record = data.index(b"word/document.xml") + len("word/document.xml")  # its local header
    data[record + 40 : record + 80] = bytes(40)  # zeros inside its deflated bytes
    with pytest.raises(ParseError, match="the DOCX archive is damaged"):
        parse("damaged.docx", bytes(data))
