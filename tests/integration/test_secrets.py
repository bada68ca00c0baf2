"""The leak check itself must be able to fail: a test that prints the password is reported."""

pytest_plugins = ["pytester"]


def test_leak_check_fails_a_test_that_prints_the_password(pytester):
    from tests.stack import HUB_PASSWORD

    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(f"def test_leaky():\n    print({HUB_PASSWORD!r})\n\ndef test_clean():\n    print('ok')\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--show-capture=no")
    result.assert_outcomes(passed=1, failed=1)
    assert "the test password appeared in output" in result.stdout.str()
