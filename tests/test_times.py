import pytest

from ingest.times import BadTime, epoch, iso


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2021-08-05T10:26:27Z", 1628159187.0),
        ("2021-08-05T10:26:27.000Z", 1628159187.0),
        ("2021-08-05T03:26:27.000-07:00", 1628159187.0),
        ("2021-08-05T12:26:27+02:00", 1628159187.0),
        ("2021-08-05T10:26:27.250Z", 1628159187.25),
    ],
)
def test_rfc3339_forms_give_utc_epoch(text, expected):
    assert epoch(text) == expected


def test_none_stays_none():
    assert epoch(None) is None and iso(None) is None


@pytest.mark.parametrize("bad", ["yesterday", "", "9999-01-01T00:00:00Z", "1970-01-01T00:00:00Z", 12, ["x"]])
def test_bad_times_are_refused(bad):
    with pytest.raises(BadTime):
        epoch(bad)


def test_iso_round_trip():
    assert iso(epoch("2020-01-20T09:42:40.000-08:00")) == "2020-01-20T17:42:40Z"
