"""The SVG sequence chart reads like a good sequence diagram: every label inside the canvas and
clear of the time column, a Pairing Failed arrow naming its reason, the feature exchange naming
IO capabilities and AuthReq."""

import re
import xml.etree.ElementTree as ET

from simhelpers import Recorder, connect

from tools.blesim import World, render
from tools.blesim.render import _CHAR_W, _TIME_W


def _wrong_passkey_trace():
    """A passkey pairing where the phone's user types a wrong number: Pairing Failed 0x04."""
    w = World()
    p, c = w.board("periph"), w.board("phone", profile="phone")
    answers = {3: 123456, 2: 654321}  # display 123456; the user types 654321
    for b, io in ((p, 0), (c, 2)):  # DisplayOnly peripheral, KeyboardOnly phone
        b.ble.config(io=io, mitm=True)
        b.ble.irq(Recorder(b.ble, passkey=lambda conn, action, n: answers.get(action)))
        b.ble.active(True)
    hp, hc = connect(w, p, c)
    c.ble.gap_pair(hc)
    w.run(3)
    return w.trace


def test_pairing_failed_arrow_names_its_reason_and_labels_fit():
    t = _wrong_passkey_trace()
    doc = render.svg(t)
    root = ET.fromstring(doc)
    width = int(root.get("width"))
    texts = [el for el in root.iter() if el.tag.endswith("text")]
    labels = [el.text or "" for el in texts]
    assert any(x == "PAIRING_FAILED 0x04 Confirm Value Failed" for x in labels), labels
    assert any(re.match(r"PAIRING_REQUEST KeyboardOnly, bond\+MITM\+SC, key 16", x) for x in labels), labels
    assert any(re.match(r"PAIRING_RESPONSE DisplayOnly, bond\+MITM\+SC, key 16", x) for x in labels), labels
    for el in texts:
        s = el.text or ""
        x = float(el.get("x"))
        w = len(s) * _CHAR_W
        if el.get("text-anchor") == "middle":
            x0, x1 = x - w / 2, x + w / 2
        else:
            x0, x1 = x, x + w
        assert x1 <= width, "label runs past the right edge: %r" % s
        if not re.match(r"^\d+\.\d{3}$", s):  # all but the times stay clear of the time column
            assert x0 >= _TIME_W, "label reaches into the time column: %r" % s
    # the terminal chart names the reason too
    assert "PAIRING_FAILED 0x04 Confirm Value Failed" in render.text(t, width=200)
