"""A file's bytes to the text file_search indexes, page by page, for the formats OpenAI's hosted
file_search accepts; anything else, or anything broken, is a `ParseError` whose message the
user reads as the file's `last_error.message`.

Each format is read by a well-kept library rather than by hand: pypdfium2 for PDFs (PDFium,
Chrome's PDF engine: several times faster than a pure-Python reader, lenient with damaged
files, opens files encrypted with an empty user password, as many are only to restrict
permissions), python-docx for Word
documents, selectolax (lexbor) for HTML (a real HTML5 parser, so the text is what a browser
would show), and the standard library's json and csv. Text files must be UTF-8 (with or
without a byte order mark) or UTF-16 with a byte order mark; guessing a legacy code page would
index mojibake without telling anyone.

A DOCX file is a zip archive, and python-docx would inflate whatever it is given, so its
directory is checked first: a total uncompressed size or a compression ratio no real document
has is refused before anything is inflated. The entries are then inflated in bounded steps,
which stop at the sizes the directory declares, and python-docx reads that copy, so an archive
whose directory lies inflates no further than one that tells the truth.

Parsing is CPU-bound and synchronous (callers run it in a thread) and pure: it reads only the
bytes it is given. PDFium is not thread-safe, not even across documents, so one PDF at a time
is read in the process.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docx
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]
from docx.document import Document as DocxDocument
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from selectolax.lexbor import LexborHTMLParser, LexborNode

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown"})
CODE_EXTENSIONS = frozenset(
    {
        ".py", ".js", ".ts", ".java", ".c", ".cpp", ".h", ".cs", ".go", ".rb", ".php", ".sh",
        ".css", ".tex", ".rs", ".kt", ".swift", ".sql", ".yaml", ".yml", ".toml", ".xml",
    }
)  # fmt: skip
HTML_EXTENSIONS = frozenset({".html", ".htm"})
SUPPORTED_EXTENSIONS = (
    TEXT_EXTENSIONS
    | CODE_EXTENSIONS
    | HTML_EXTENSIONS
    | frozenset({".pdf", ".docx", ".json", ".csv"})
)

# What a DOCX archive may inflate to. Real documents, pictures included, stay far below the
# total. The ratio is a zip bomb's mark (deflate packs zeros about a thousand to one) only in a
# large entry: prose compresses about 10:1 and pictures hardly at all, but a generated
# document's repeated XML can pass 100:1 at a megabyte or two, where inflating costs nothing.
DOCX_MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
DOCX_MAX_RATIO = 100
DOCX_RATIO_CHECKED_ABOVE_BYTES = 10 * 1024 * 1024
DOCX_MAX_ENTRIES = 10_000

NO_TEXT_LAYER = "the PDF has no text layer (an image only); nothing to index"
NO_TEXT = "the file has no text; nothing to index"


class ParseError(Exception):
    """The file cannot be read as its extension says; the message is meant for the user."""


@dataclass(frozen=True)
class Document:
    """A file's text, one entry per page (one page for formats without pages)."""

    pages: tuple[str, ...]
    # Why a file that parsed has nothing to index, when that is so.
    note: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(self.pages)


def extension(filename: str) -> str:
    """The file's extension, lower-cased with its dot ('' when it has none)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    _, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and ext else ""


def supported(filename: str) -> bool:
    return extension(filename) in SUPPORTED_EXTENSIONS


def parse(filename: str, data: bytes) -> Document:
    ext = extension(filename)
    parser = _PARSERS.get(ext)
    if parser is None:
        shown = f"'{ext}'" if ext else "without an extension"
        raise ParseError(f"files {shown} are not supported by file_search")
    if not data:
        raise ParseError("the file is empty")
    return parser(data)


def _plain_text(data: bytes) -> Document:
    return _one_page(decode_text(data))


def _one_page(text: str) -> Document:
    return Document(pages=(text,), note=None if text.strip() else NO_TEXT)


def decode_text(data: bytes) -> str:
    """UTF-8 (a byte order mark is dropped), or UTF-16 when a byte order mark says so; line
    ends become '\\n'. NUL characters mean a binary file, which no text reader would show."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise ParseError("the file is not UTF-8 text") from None
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ParseError("the file is not valid UTF-16 text") from None
    if "\x00" in text:
        raise ParseError("the file is binary, not text (it contains NUL bytes)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- JSON and CSV ---


def _json(data: bytes) -> Document:
    text = decode_text(data)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"the file is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ParseError("the JSON is nested too deeply to read") from None
    try:
        # Pretty-printed, one key or value a line, so that a chunk holds whole keys and values.
        return _one_page(json.dumps(value, indent=2, ensure_ascii=False))
    except RecursionError:
        raise ParseError("the JSON is nested too deeply to read") from None


def _csv(data: bytes) -> Document:
    """Each row becomes one line `header: value; header: value` (a value's own line breaks
    become spaces), so that a row read alone in a chunk still says what its values are."""
    text = decode_text(data)
    lines: list[str] = []
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = next(rows, None)
        if header is None:
            return _one_page("")
        names = [name.strip() for name in header]
        for row in rows:
            cells = [
                f"{_column_name(names, column)}: {' '.join(value.split())}"
                for column, value in enumerate(row)
                if value.strip()
            ]
            if cells:
                lines.append("; ".join(cells))
    except csv.Error as exc:
        raise ParseError(f"the CSV could not be read: {exc}") from None
    if not lines:  # a header and nothing else: the header is the content
        lines = ["; ".join(name for name in names if name)]
    return _one_page("\n".join(lines))


def _column_name(names: list[str], column: int) -> str:
    if column < len(names) and names[column]:
        return names[column]
    return f"column {column + 1}"


# --- HTML ---

# Elements a browser never shows the text of.
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "head"})
# Elements that start a new line of text.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li",
        "main", "menu", "nav", "ol", "option", "p", "pre", "section", "summary", "table",
        "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
    }
)  # fmt: skip
_WHITESPACE = re.compile(r"\s+")


def _html(data: bytes) -> Document:
    tree = LexborHTMLParser(decode_text(data))
    parts: list[str] = []
    title = tree.css_first("head > title")
    if title is not None:
        parts.append(title.text(deep=True))
    if tree.root is not None:
        _visible_text(tree.root, parts)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return _one_page("\n".join(line for line in lines if line))


def _visible_text(root: LexborNode, parts: list[str]) -> None:
    """Appends the text a browser would show, a line per block element, in document order.
    Walked with a stack rather than by recursion: documents nest deeper than Python recurses.
    Whitespace runs collapse to one space as in a browser, except inside <pre>."""
    # (node, entering): a block element is pushed twice, to add a line end after its children.
    stack: list[tuple[LexborNode, bool]] = [(root, True)]
    pre_depth = 0
    while stack:
        node, entering = stack.pop()
        tag = node.tag or ""
        if not entering:
            parts.append("\n")
            if tag == "pre":
                pre_depth -= 1
            continue
        if tag == "-text":
            text = node.text_content or ""
            parts.append(text if pre_depth else _WHITESPACE.sub(" ", text))
            continue
        if tag.startswith(("-", "!", "_")) or tag in _HIDDEN_TAGS:
            continue  # comments, doctypes, and what is never shown
        if "hidden" in node.attributes:
            continue
        if tag == "br":
            parts.append("\n")
            continue
        if tag in _BLOCK_TAGS:
            parts.append("\n")
            stack.append((node, False))
            if tag == "pre":
                pre_depth += 1
        stack.extend((child, True) for child in reversed(list(_children(node))))


def _children(node: LexborNode) -> Iterator[LexborNode]:
    child = node.child
    while child is not None:
        yield child
        child = child.next


# --- PDF ---


# Held around every call into PDFium (see the module's docstring).
_PDFIUM = threading.Lock()


def _pdf(data: bytes) -> Document:
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as refused:
            raise ParseError(_pdf_refusal(refused)) from None
        try:
            pages = tuple(_page_text(document, index) for index in range(len(document)))
        except Exception as exc:  # PdfiumError, or anything from a page PDFium chokes on
            raise ParseError(f"the PDF could not be read (damaged or truncated?): {exc}") from None
        finally:
            # Now, under the lock, not whenever a finalizer runs in whatever thread.
            document.close()
    if not pages:
        raise ParseError("the PDF has no pages")
    note = None if any(page.strip() for page in pages) else NO_TEXT_LAYER
    return Document(pages=pages, note=note)


def _pdf_refusal(refused: pdfium.PdfiumError) -> str:
    if refused.err_code == pdfium_c.FPDF_ERR_PASSWORD:
        # The empty password was tried and did not open it.
        return "the PDF is encrypted with a password; upload it unencrypted"
    if refused.err_code == pdfium_c.FPDF_ERR_SECURITY:
        return "the PDF is encrypted with a cipher this service cannot decrypt"
    return f"the PDF could not be read (damaged or truncated?): {refused}"


def _page_text(document: pdfium.PdfDocument, index: int) -> str:
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            text: str = textpage.get_text_range()
        finally:
            textpage.close()
    finally:
        page.close()
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


# --- DOCX ---


def _docx(data: bytes) -> Document:
    try:
        document = docx.Document(io.BytesIO(_inflated_docx_archive(data)))
    except ParseError:
        raise
    except Exception as exc:  # python-docx: KeyError, ValueError, its own errors...
        raise ParseError(f"the file is not a Word (DOCX) document: {exc}") from None
    try:
        lines = list(_docx_blocks(document))
    except Exception as exc:
        raise ParseError(f"the Word document could not be read: {exc}") from None
    return _one_page("\n".join(line for line in lines if line.strip()))


def _inflated_docx_archive(data: bytes) -> bytes:
    """The archive written again with every entry stored (not compressed), once its directory
    passed `_check_docx_directory`. Each entry is inflated a block at a time, and zipfile
    stops an entry at the size the directory declares, so nothing inflates past the checked
    sizes; python-docx then reads entries whole, and would not stop (zipfile inflates a whole
    read before cutting it to the declared size)."""
    try:
        source = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise ParseError(
            "the file is not a Word (DOCX) document: it is not a zip archive"
        ) from None
    out = io.BytesIO()
    with source:
        entries = source.infolist()
        _check_docx_directory(entries)
        # A name listed twice means its last entry, as in zipfile's own lookups.
        latest = {entry.filename: entry for entry in entries if not entry.is_dir()}
        try:
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
                for entry in latest.values():
                    with source.open(entry) as stream, copy.open(entry.filename, "w") as target:
                        while block := stream.read(_INFLATE_BLOCK_BYTES):
                            target.write(block)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError, zlib.error) as exc:
            raise ParseError(f"the DOCX archive is damaged: {exc}") from None
    return out.getvalue()


_INFLATE_BLOCK_BYTES = 1024 * 1024


def _check_docx_directory(entries: list[zipfile.ZipInfo]) -> None:
    if len(entries) > DOCX_MAX_ENTRIES:
        raise ParseError(f"the DOCX archive has more than {DOCX_MAX_ENTRIES} entries; refused")
    total = sum(entry.file_size for entry in entries)
    if total > DOCX_MAX_UNCOMPRESSED_BYTES:
        raise ParseError(
            f"the DOCX archive would inflate to {total} bytes, more than the "
            f"{DOCX_MAX_UNCOMPRESSED_BYTES} allowed; refused"
        )
    for entry in entries:
        if entry.flag_bits & 0x1:
            raise ParseError("the DOCX archive is encrypted; upload it unencrypted")
        if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ParseError(
                f"the DOCX entry {entry.filename!r} uses a compression Word does not write"
            )
        # Deflate never makes data much larger, so more compressed bytes than that means a
        # directory that understates what the entry inflates to.
        if entry.compress_size > entry.file_size + entry.file_size // 100 + 1024:
            raise ParseError(
                f"the DOCX entry {entry.filename!r} holds more data than the archive's "
                "directory says; refused"
            )
        if entry.file_size > DOCX_RATIO_CHECKED_ABOVE_BYTES and (
            entry.file_size > DOCX_MAX_RATIO * max(entry.compress_size, 1)
        ):
            raise ParseError(
                f"the DOCX entry {entry.filename!r} is compressed more than "
                f"{DOCX_MAX_RATIO}:1, as in a zip bomb; refused"
            )


def _docx_blocks(container: DocxDocument | _Cell) -> Iterator[str]:
    """Paragraphs and tables in document order; a table row is one line, its cells joined by
    ' | ', a cell's own paragraphs and nested tables inside it."""
    for block in container.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text
        elif isinstance(block, Table):
            yield from _docx_table(block)


def _docx_table(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell is listed once per grid column it spans, side by side.
            if cell._tc is previous:
                continue
            previous = cell._tc
            text = " ".join(line.strip() for line in _docx_blocks(cell) if line.strip())
            if text:
                cells.append(text)
        if cells:
            yield " | ".join(cells)


_PARSERS: dict[str, Callable[[bytes], Document]] = {
    **dict.fromkeys(TEXT_EXTENSIONS | CODE_EXTENSIONS, _plain_text),
    **dict.fromkeys(HTML_EXTENSIONS, _html),
    ".pdf": _pdf,
    ".docx": _docx,
    ".json": _json,
    ".csv": _csv,
}

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Document",
    "ParseError",
    "extension",
    "parse",
    "supported",
]
