"""Links created during the current test; conftest.py prints their PDU traces when it fails."""

LIVE = []


def register(link):
    LIVE.append(link)
    return link
