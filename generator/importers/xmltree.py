"""Untrusted XML into a small element tree that remembers the line and column of every element.

defusedxml's SAX parser with DTDs, entity declarations and external references forbidden (an XML bomb or an
XXE attempt is refused at its declaration, before anything expands), a size limit checked by the caller, and
limits on element count and depth so memory stays bounded. Comments are kept: ISPDB entries explain
server quirks in them ("server allows checks only every 15 minutes").
"""

from __future__ import annotations

import io
import xml.sax
import xml.sax.handler
from dataclasses import dataclass, field
from typing import Any

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.expatreader import DefusedExpatParser

from generator.errors import Position
from generator.importers.draft import MAX_XML_DEPTH, MAX_XML_ELEMENTS, fail


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    position: Position
    children: list[Element] = field(default_factory=list)
    text: str = ""
    comments: list[str] = field(default_factory=list)  # the comments just before it (or last inside it)

    def walk(self) -> list[Element]:
        return [self, *(e for child in self.children for e in child.walk())]

    def find(self, tag: str) -> Element | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def child_text(self, tag: str) -> str | None:
        child = self.find(tag)
        return None if child is None else child.text.strip()


class _Parser(DefusedExpatParser):
    """defusedxml's parser; with a permitted DOCTYPE its external subset (context None) is skipped unread
    instead of refused: expat then knows no entities, so any reference to one is a well-formedness error."""

    skip_external_dtd = False

    def defused_external_entity_ref_handler(  # type: ignore[override]
            self, context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
        if context is None and self.skip_external_dtd:
            return 1  # "handled", nothing read: expat treats the external subset as empty
        raise ExternalReferenceForbidden(context, base, sysid, pubid)


class _Limit(Exception):
    pass


class _Builder(xml.sax.handler.ContentHandler):
    def __init__(self, file: str, allowed_doctype: str | None) -> None:
        super().__init__()
        self.file = file
        self.allowed_doctype = allowed_doctype
        self.stack: list[Element] = []
        self.root: Element | None = None
        self.count = 0
        self.pending: list[str] = []
        self.locator: Any = None

    def setDocumentLocator(self, locator: Any) -> None:
        self.locator = locator

    def here(self) -> Position:
        if self.locator is None:
            return Position(self.file)
        return Position(self.file, self.locator.getLineNumber() or 0, (self.locator.getColumnNumber() or 0) + 1)

    def startElement(self, name: str, attrs: Any) -> None:
        self.count += 1
        if self.count > MAX_XML_ELEMENTS:
            raise _Limit(f"more than {MAX_XML_ELEMENTS:,} elements")
        if len(self.stack) >= MAX_XML_DEPTH:
            raise _Limit(f"elements nested more than {MAX_XML_DEPTH} deep")
        element = Element(name, {k: attrs[k] for k in attrs.getNames()}, self.here(), comments=self.pending)
        self.pending = []
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def endElement(self, name: str) -> None:
        self.stack.pop().comments.extend(self.pending)  # a comment after the last child: about the element
        self.pending = []

    def characters(self, content: str) -> None:
        if self.stack:
            self.stack[-1].text += content

    def skippedEntity(self, name: str) -> None:
        raise EntitiesForbidden(name, None, None, None, None, None)

    # LexicalHandler
    def comment(self, content: str) -> None:
        # A comment is about what follows it (ISPDB writes them above the server they explain).
        if self.stack:
            self.pending.append(" ".join(content.split()))

    def startDTD(self, name: str, public_id: str | None, system_id: str | None) -> None:
        # Apple plists start with <!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://...">: the
        # declaration is allowed there (never fetched); any entity declared in it is still refused.
        if self.allowed_doctype != name:
            raise DTDForbidden(name, system_id, public_id)

    def endDTD(self) -> None:
        pass

    def startCDATA(self) -> None:
        pass

    def endCDATA(self) -> None:
        pass


def parse_xml(data: bytes, file: str, allowed_doctype: str | None = None) -> Element:
    """Parse `data` (already size-checked) or raise a located SpecError. A <!DOCTYPE> is refused unless it
    names `allowed_doctype` (plists); entity declarations and external references are always refused."""
    builder = _Builder(file, allowed_doctype)
    parser = _Parser(forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.skip_external_dtd = allowed_doctype is not None
    parser.setContentHandler(builder)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setFeature(xml.sax.handler.feature_external_pes, False)
    parser.setProperty(xml.sax.handler.property_lexical_handler, builder)
    source = xml.sax.xmlreader.InputSource(file)
    source.setByteStream(io.BytesIO(data))
    try:
        parser.parse(source)
    except DTDForbidden:
        raise fail(builder.here(), "the XML has a DTD (<!DOCTYPE ...>), which this importer refuses: DTDs "
                   "carry entity definitions (XML bombs) and external references",
                   "remove the <!DOCTYPE> line; autoconfig files and profiles do not need it") from None
    except EntitiesForbidden as exc:
        raise fail(builder.here(), f"the XML declares or uses the entity '{exc.name}', which this importer "
                   "refuses", "remove the entity (write the text itself)") from None
    except ExternalReferenceForbidden as exc:
        raise fail(builder.here(), f"the XML refers to an external resource ({exc.sysid}), which this importer "
                   "never fetches", "remove the reference") from None
    except DefusedXmlException as exc:
        raise fail(builder.here(), f"the XML uses a construct this importer refuses ({exc})",
                   "remove it") from None
    except _Limit as exc:
        raise fail(builder.here(), f"the XML has {exc}; real files have a few hundred",
                   "check that this is the right file") from None
    except LookupError as exc:  # <?xml encoding="..."?> names an encoding Python does not know
        raise fail(Position(file, 1, 1), f"the XML declares an unknown encoding ({exc})",
                   "use encoding=\"UTF-8\"") from None
    except xml.sax.SAXParseException as exc:
        where = Position(file, exc.getLineNumber() or 0, (exc.getColumnNumber() or 0) + 1)
        how = ("make <?xml … encoding=…?> say how the file is saved (an editor saved it as UTF-16 while it "
               "says UTF-8?), or save it as UTF-8" if "encoding" in exc.getMessage() else
               "fix the XML (an unescaped & or <, a missing closing tag, a truncated file?)")
        raise fail(where, f"not well-formed XML: {exc.getMessage()}", how) from None
    if builder.root is None:
        raise fail(Position(file), "the file holds no XML element", "check that this is the right file")
    return builder.root
