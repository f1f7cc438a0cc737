"""Edits applied by core.edits agree with a model of Postfix's header list.

The model follows Postfix 3.7's cleanup_milter.c and milter8.c (and what
/work/shared/reference/postfix-milter-facts.md measured): one list of every header as
delivered, Postfix's own Received first.
- addheader appends to the header block.
- insheader(i) inserts before the (i+1)-th header of that list, counting everything (inserted
  headers and Postfix's Received); past the end it appends.
- chgheader(name, n, value) and its delete form (empty value) skip the list's first header (that
  is Postfix's Received, until a milter inserts above it), then find the n-th header of that name,
  case-insensitively; n = 0 counts as 1. A change writes the name as the request gives it; a
  change of an absent header appends it; a delete of an absent header does nothing.

core.edits keeps the MTA's Received apart and counts changes over the headers a milter sees, which
is the same as long as nothing was inserted above that Received before a change or delete. The
pipeline guarantees it (inserts at index 0 come from its last stages: A-R, DKIM-Signature), and
the property generates edits in that order. Were a stage to change a header after an insert at
index 0, Postfix would skip the inserted header instead and count its own Received.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from mailwarden.core.decisions import AddHeader, ChangeHeader, DeleteHeader, Edit
from mailwarden.core.edits import apply_edits
from mailwarden.core.model import Body, Connection, Envelope, Header, Message, Transaction

MTA = Header("Received", " from client.test by mx.test (Postfix)")


@dataclass
class PostfixHeaders:
    headers: list[Header]

    def apply(self, edit: Edit) -> None:
        match edit:
            case AddHeader(name=name, value=value, index=None):
                self.headers.append(Header(name, value))
            case AddHeader(name=name, value=value, index=index) if index is not None:
                self.headers.insert(min(index, len(self.headers)), Header(name, value))
            case ChangeHeader(name=name, occurrence=occ, value=value) if value:
                pos = self.find(name, occ)
                if pos is None:
                    self.headers.append(Header(name, value))
                else:
                    self.headers[pos] = Header(name, value)
            case ChangeHeader(name=name, occurrence=occ) | DeleteHeader(name=name, occurrence=occ):
                pos = self.find(name, occ)
                if pos is not None:
                    del self.headers[pos]

    def find(self, name: str, occurrence: int) -> int | None:
        wanted = max(occurrence, 1)
        for pos in range(1, len(self.headers)):  # the first header is skipped, whatever it is
            if self.headers[pos].name.lower() == name.lower():
                wanted -= 1
                if wanted == 0:
                    return pos
        return None


NAMES = st.sampled_from(["Received", "received", "X-A", "x-a", "Subject", "DKIM-Signature"])
VALUES = st.sampled_from([" 1", " 2", " three", "\tfolded\n\tvalue", ""])
HEADERS = st.lists(st.builds(Header, NAMES, VALUES), max_size=6)
OCCURRENCE = st.integers(min_value=1, max_value=4)
EDITS = st.one_of(
    st.builds(AddHeader, NAMES, VALUES.filter(bool)),
    st.builds(AddHeader, NAMES, VALUES.filter(bool), st.integers(min_value=0, max_value=9)),
    st.builds(ChangeHeader, NAMES, OCCURRENCE, VALUES),
    st.builds(DeleteHeader, NAMES, OCCURRENCE),
)


def delivered(headers: list[Header], edits: list[Edit], mta: bool) -> list[Header]:
    message = Message(list(headers), Body.from_bytes(b""), MTA if mta else None)
    tx = Transaction(Connection(), Envelope(), message)
    apply_edits(tx, edits)
    return tx.message.delivered_headers()


def postfix(headers: list[Header], edits: list[Edit], mta: bool) -> list[Header]:
    """Without an MTA header (dry-run of a message never received), core.edits keeps the
    positions the receiving MTA's Received would have: the model has one, removed at the end."""
    model = PostfixHeaders([MTA, *headers])
    for edit in edits:
        model.apply(edit)
    return [h for h in model.headers if mta or h is not MTA]


@given(HEADERS, st.lists(EDITS, max_size=8), st.booleans())
def test_edits_as_mailwarden_emits_them_agree_with_postfix(headers: list[Header], edits: list[Edit],
                                                           mta: bool) -> None:
    """The pipeline's order: changes and deletes, then inserts above Postfix's Received last
    (A-R and DKIM-Signature), so the MTA's Received is always the header Postfix skips."""
    edits = sorted(edits, key=lambda e: isinstance(e, AddHeader) and e.index == 0)
    assert delivered(headers, edits, mta) == postfix(headers, edits, mta)
