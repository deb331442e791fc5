"""The people table (the owners' e-mail addresses a sync read) and the people CSV."""

from __future__ import annotations

import pytest

from dataset import database, people
from dataset.people import PeopleError, Person, read_csv


def test_an_address_seen_again_takes_its_newest_name_and_time(tmp_path):
    db = database.connect(tmp_path / "x.db")
    with db.conn:
        people.keep(db, "salesforce", [("Ann Lee", " Ann@Acme.com "), ("Bo Wu", "bo@acme.com"),
                                       ("No Mail", ""), ("", "x@acme.com"), ("Bad", "not-mail")],
                    "2025-01-01T00:00:00+00:00")  # fmt: skip
    with db.conn:
        people.keep(db, "salesforce", [("Ann Lee-Park", "ann@acme.com")], "2025-02-01T00:00:00+00:00")  # fmt: skip
        people.keep(db, "hubspot", [("Ann Lee", "ann@acme.com")], "2025-02-01T00:00:00+00:00")
    assert people.people(db) == [
        Person("Ann Lee", "ann@acme.com", "hubspot", None, "2025-02-01T00:00:00+00:00"),
        Person("Ann Lee-Park", "ann@acme.com", "salesforce", None, "2025-02-01T00:00:00+00:00"),
        Person("Bo Wu", "bo@acme.com", "salesforce", None, "2025-01-01T00:00:00+00:00"),
    ]


def test_a_people_csv_is_read_with_its_roles():
    text = "Email,Name,Role,Team\nann@acme.com,Ann Lee,rep,x\n\nMO@ACME.COM, Mo Park ,Manager,\nlee@acme.com,Lee,,\n"  # fmt: skip
    assert read_csv(text, "people.csv") == [
        Person("Ann Lee", "ann@acme.com", "people.csv", "rep"),
        Person("Mo Park", "mo@acme.com", "people.csv", "manager"),
        Person("Lee", "lee@acme.com", "people.csv", "rep"),  # no role: a rep
    ]


@pytest.mark.parametrize(
    "text, said",
    [
        (
            "name,email\nAnn,ann@acme.com\n",
            "the header must name the columns name, email and role (missing: role)",
        ),
        (
            "name,email,role\nAnn,ann(at)acme.com,rep\n",
            "line 2: 'ann(at)acme.com' is not an e-mail address",
        ),
        (
            "name,email,role\nAnn,ann@acme.com,boss\n",
            "line 2: role 'boss' is not one of rep, manager, leader",
        ),
        ("name,email,role\n,ann@acme.com,rep\n", "line 2: no name"),
        (
            "name,email,role\nAnn,ann@acme.com,rep\nAnnie,ANN@acme.com,rep\n",
            "line 3: ann@acme.com again (first on line 2)",
        ),
    ],
)
def test_a_bad_people_csv_says_which_line_and_why(text, said):
    with pytest.raises(PeopleError) as err:
        read_csv(text, "people.csv")
    assert str(err.value).startswith("people.csv: ") and said in str(err.value)
