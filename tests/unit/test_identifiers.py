"""Dataset identifiers: every spelling of one identifier is one key, and a malformed one is refused
naming the rule it breaks."""

from __future__ import annotations

import pytest

from archipelago.errors import Unprocessable
from archipelago.resolver.identifiers import parse_identifier

PDH = "d41d8cd98f00b204e9800998ecf8427e+0"

SAME = [
    (["https://doi.org/10.1/X", "doi:10.1/x", "DOI:10.1/X", "10.1/x", "http://dx.doi.org/10.1/x"], "doi:10.1/x"),
    (["ark:/12345/abc", "ark:12345/abc", "https://n2t.net/ark:/12345/abc"], "ark:/12345/abc"),
    (["hdl:1234/5", "http://hdl.handle.net/1234/5"], "hdl:1234/5"),
    (["urn:NBN:de:1234-5", "URN:nbn:de:1234-5"], "urn:nbn:de:1234-5"),
    (["https://Example.ORG:443/data", "HTTPS://example.org/data"], "https://example.org/data"),
    (["ega.dataset:EGAD00001000001", "EGA.DATASET:EGAD00001000001"], "ega.dataset:EGAD00001000001"),
    (["drs://Data.Example.org/abc"], "drs://data.example.org/abc"),
    (["drs://EGA.dataset:EGAD00001000001"], "drs://ega.dataset:EGAD00001000001"),
    ([f"keep:{PDH}", f" keep:{PDH} "], f"keep:{PDH}"),
    ([f"keep:{PDH}/a/b.txt"], f"keep:{PDH}/a/b.txt"),
]


@pytest.mark.parametrize(("spellings", "normal"), SAME, ids=[n for _, n in SAME])
def test_every_spelling_of_an_identifier_is_one_key(spellings, normal):
    assert {parse_identifier(s).text for s in spellings} == {normal}


def test_schemes_are_named():
    assert [parse_identifier(t).scheme for t in ("doi:10.1/x", "ark:/12345/x", "hdl:1/2", "urn:a:b", "https://a.org/x",
                                                 "https://purl.org/x/y", "pdb:2gc4", "drs://h/x", f"keep:{PDH}")] == \
        ["doi", "ark", "handle", "urn", "url", "purl", "compact", "drs", "keep"]
    assert parse_identifier(f"keep:{PDH}/x").content == PDH


BAD = [
    ("doi:11.1/x", "a DOI is 10.<registrant code>/<suffix>"),
    ("https://doi.org/nope", "a DOI is 10."),
    ("urn:x", "a URN is urn:<namespace>:<specific string>"),
    ("ega.dataset:XYZ", r"a ega.dataset accession must match ^EGAD\d{11}$"),
    ("nosuchprefix123:abc", "is not a compact identifier prefix the Bioregistry knows"),
    ("keep:xyz", "keep: is followed by a portable data hash"),
    (f"keep:{PDH}/../etc", "no empty, '.' or '..' components"),
    ("drs://hostonly", "a DRS URI is drs://<hostname>/<id>"),
    ("hello", "not a recognised identifier"),
    ("", "must not be empty"),
    ("doi:10.1/a b", "no spaces or control characters"),
    ("http://", "a URL is http(s)://<host>"),
    ("x" * 3000, "longer than 2048 characters"),
]


@pytest.mark.parametrize(("text", "rule"), BAD, ids=[b[0][:30] or "empty" for b in BAD])
def test_a_malformed_identifier_is_a_422_naming_its_rule(text, rule):
    with pytest.raises(Unprocessable) as info:
        parse_identifier(text)
    assert info.value.status == 422 and rule in str(info.value)
