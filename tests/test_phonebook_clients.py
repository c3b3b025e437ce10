"""The phonebook clients against the sandbox's twins over real HTTP: seed 004's group methods, listing
across pages, the seed 001 form, refusals and credentials kept out of errors."""

from __future__ import annotations

import pytest

from dispatcher.sandbox.core import Rename
from dispatcher.sandbox.phonebook import book
from workers.errors import AccountError, RequestError
from workers.providers.phonebook import AddOutcome, Book, Contact, build_phonebook


def test_ghasedak_groups_add_list_across_pages_rename_remove(sandbox, sandbox_environ):
    client = build_phonebook("ghasedak", {**sandbox_environ, "SMSDISPATCH_GHASEDAK_CONTACT_PAGE": "40"})
    group = client.create_group("vip")
    assert [g.name for g in client.groups()] == ["vip"]
    phones = [f"+98912{i:07d}" for i in range(130)]
    for start in range(0, 130, client.batch):
        part = [Contact(i, p, {"firstname": f"n{i}", "email": "a,b@x.ir"}) for i, p in enumerate(phones)][
            start : start + client.batch
        ]
        assert {r.outcome for r in client.add(part, Book(group.id))} == {AddOutcome.ADDED}
    listed = list(client.listing(group.id))  # pages of 40: 40, 40, 40, 10
    assert [x.phone for x in listed] == phones
    assert listed[3].fields == {
        "firstname": "n3",
        "lastname": "",
        "email": "a b@x.ir",
    }  # no comma inside a list
    client.rename_group(group.id, "VIP 1405")
    assert [g.name for g in client.groups()] == ["VIP 1405"]
    client.remove_group(group.id)
    assert client.groups() == []


def test_a_listing_page_we_cannot_read_is_counted_and_the_pages_after_it_still_read(
    caplog, sandbox, sandbox_environ
):
    """A page whose rows have no `number` is a full page all the same: the listing goes on to the next
    pages, and `read_listing` says how many rows it could not read (said once in the log)."""
    client = build_phonebook("ghasedak", {**sandbox_environ, "SMSDISPATCH_GHASEDAK_CONTACT_PAGE": "40"})
    group = client.create_group("vip")
    phones = [f"+98912{i:07d}" for i in range(130)]
    for start in range(0, 130, client.batch):
        client.add(
            [Contact(i, p) for i, p in enumerate(phones)][start : start + client.batch], Book(group.id)
        )
    sandbox.state.add_rename(Rename("ghasedak", "contact/group/listnumber", {"number": "mobile"}, times=1))
    listing = client.read_listing(group.id)
    assert (listing.phones, listing.unreadable) == (frozenset(phones[40:]), 40)
    said = [r.getMessage() for r in caplog.records if r.name == "workers.providers.evidence"]
    assert len(said) == 1 and "40 of 130 rows could not be read (no number: 40; keys in them:" in said[0]
    assert client.read_listing(group.id) == type(listing)(frozenset(phones), 0)


def test_ghasedak_refused_list_and_bad_key(sandbox, sandbox_environ):
    client = build_phonebook("ghasedak", sandbox_environ)
    group = client.create_group("g")
    book(sandbox.state).refused.add("09120000002")
    with pytest.raises(RequestError) as refused:
        client.add([Contact(1, "+989120000001"), Contact(2, "+989120000002")], Book(group.id))
    assert refused.value.code == "8"
    wrong = build_phonebook("ghasedak", {**sandbox_environ, "SMSDISPATCH_GHASEDAK_APIKEY": "not-the-key"})
    with pytest.raises(AccountError) as denied:
        wrong.groups()
    assert "not-the-key" not in str(denied.value)


def test_amoot_contact_create_sends_every_seed_field(sandbox, sandbox_environ):
    client = build_phonebook("amoot", sandbox_environ)
    fields = {"FName": "سارا", "GenderType": "خانم", "BornDate": "1990-01-31", "CustomText6": "x"}
    (result,) = client.add([Contact(7, "+989121234567", fields)], Book(labels=("الف", "ب")))
    assert (result.key, result.outcome) == (7, AddOutcome.ADDED)
    (added,) = book(sandbox.state).adds
    assert added.fields["Mobile"] == "09121234567" and added.fields["GenderType"] == "False"
    assert added.fields["Labels"] == "الف,ب" and added.fields["BornDate"] == "1990-01-31"
    assert added.fields["LName"] == "" and added.fields["CustomText6"] == "x"
    with pytest.raises(RequestError) as refused:
        client.add([Contact(8, "+989121234568", {})], Book())
    assert refused.value.code == "FirstNameOrLastName_Empty"
