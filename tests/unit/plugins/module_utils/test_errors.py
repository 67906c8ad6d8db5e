"""errors.error_text: the one helper that puts an SDK error's words on one line."""

from ansible_collections.coe.openstack.plugins.module_utils.errors import error_text


class Duck(Exception):
    def __init__(self, message=None, details=None):
        super().__init__(message or "")
        self.message = message
        self.details = details


def test_message_then_details_on_one_line():
    assert error_text(Duck("Quota exceeded\n for instances", "Requested 5, but already used 9")) == (
        "Quota exceeded for instances: Requested 5, but already used 9"
    )


def test_details_already_in_the_message_are_not_repeated():
    assert error_text(Duck("Conflict: name taken", "name taken")) == "Conflict: name taken"


def test_any_exception_without_those_attributes():
    assert error_text(RuntimeError("  HTTP 500 \n")) == "HTTP 500"


def test_an_openstacksdk_exception():
    from openstack import exceptions

    err = exceptions.HttpException(message="Quota exceeded", details="Requested 5")
    assert error_text(err) == "Quota exceeded: Requested 5"
