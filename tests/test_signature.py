from ingest.signature import sign, verify

VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_test_vector():
    assert sign("It's a Secret to Everybody", b"Hello, World!") == VECTOR
    assert verify("It's a Secret to Everybody", b"Hello, World!", VECTOR)


def test_wrong_secret_body_or_header_fails():
    assert not verify("another secret", b"Hello, World!", VECTOR)
    assert not verify("It's a Secret to Everybody", b"Hello, World?", VECTOR)
    assert not verify("It's a Secret to Everybody", b"Hello, World!", VECTOR[:-1] + "0")
    assert not verify("It's a Secret to Everybody", b"Hello, World!", None)
    assert not verify("", b"Hello, World!", VECTOR)
    assert not verify("It's a Secret to Everybody", b"Hello, World!", "sha1=" + VECTOR[7:])
