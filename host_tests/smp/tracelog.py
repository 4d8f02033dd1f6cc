"""Links created during the current test; conftest.py prints their PDU traces when it fails."""

from tools.smp import pdu

LIVE = []


def register(link):
    LIVE.append(link)
    return link


def tap(link, src, dst, item):
    """An SMP PDU from src to dst through the link's tap (if any), logged: what dst gets, or
    None if the tap dropped it."""
    data = item
    if link.tap is not None:
        data = link.tap(src.name, data)
        if data is None:
            link.log("%s->%s DROPPED %s" % (src.name, dst.name, pdu.describe(item)))
            return None
    link.log("%s->%s %s" % (src.name, dst.name, pdu.describe(data)))
    return data
