"""NimBLE's GATT client procedures as MicroPython's `gattc_*` use them; one in flight per
connection. DONE statuses: 0 (BLE_HS_EDONE), 0x100 + ATT error, or NimBLE's code (7 ENOTCONN
when the link drops)."""

import struct

from . import gatt as G
from .irq import (
    IRQ_GATTC_CHARACTERISTIC_DONE,
    IRQ_GATTC_CHARACTERISTIC_RESULT,
    IRQ_GATTC_DESCRIPTOR_DONE,
    IRQ_GATTC_DESCRIPTOR_RESULT,
    IRQ_GATTC_READ_DONE,
    IRQ_GATTC_READ_RESULT,
    IRQ_GATTC_SERVICE_DONE,
    IRQ_GATTC_SERVICE_RESULT,
    IRQ_GATTC_WRITE_DONE,
    IRQ_MTU_EXCHANGED,
)
from .uuid import UUID


def _att_err(p):
    req, h, code = struct.unpack_from("<BHB", p, 1)
    return h, code


class Proc:
    def start(self, ble, c):
        raise NotImplementedError

    def on_rsp(self, ble, c, p):
        raise NotImplementedError

    def abort(self, ble, c, status):
        pass


class ExchangeMtu(Proc):
    def start(self, ble, c):
        ble._att_send(c, struct.pack("<BH", G.MTU_REQ, ble._mtu))

    def on_rsp(self, ble, c, p):
        if p[0] == G.MTU_RSP:
            (m,) = struct.unpack_from("<H", p, 1)
            c.mtu = max(23, min(m, ble._mtu))
            c.mtu_done = True
            ble._irq(IRQ_MTU_EXCHANGED, (c.handle, c.mtu), conn=c.handle)
        return True


class DiscoverServices(Proc):
    def __init__(self, uuid=None):
        self.uuid = None if uuid is None else UUID(uuid)
        self.next = 1

    def _req(self, ble, c):
        if self.uuid is None:
            ble._att_send(c, struct.pack("<BHHH", G.READ_BY_GROUP_REQ, self.next, 0xFFFF, 0x2800))
        else:
            ble._att_send(c, struct.pack("<BHHH", G.FIND_BY_TYPE_REQ, self.next, 0xFFFF, 0x2800) + bytes(self.uuid))

    start = _req

    def _done(self, ble, c, status):
        ble._irq(IRQ_GATTC_SERVICE_DONE, (c.handle, status), conn=c.handle)
        return True

    def on_rsp(self, ble, c, p):
        if p[0] == G.ERROR_RSP:
            _h, code = _att_err(p)
            return self._done(ble, c, 0 if code == G.E_ATTR_NOT_FOUND else 0x100 + code)
        last = 0xFFFF
        if p[0] == G.READ_BY_GROUP_RSP:
            n = p[1]
            body = p[2:]
            for i in range(0, len(body) - n + 1, n):
                s, e = struct.unpack_from("<HH", body, i)
                ble._irq(IRQ_GATTC_SERVICE_RESULT, (c.handle, s, e), uuid=UUID(body[i + 4: i + n]), conn=c.handle)
                last = e
        elif p[0] == G.FIND_BY_TYPE_RSP:
            body = p[1:]
            for i in range(0, len(body) - 3, 4):
                s, e = struct.unpack_from("<HH", body, i)
                ble._irq(IRQ_GATTC_SERVICE_RESULT, (c.handle, s, e), uuid=self.uuid, conn=c.handle)
                last = e
        if last >= 0xFFFF:
            return self._done(ble, c, 0)
        self.next = last + 1
        self._req(ble, c)
        return False

    def abort(self, ble, c, status):
        ble._irq(IRQ_GATTC_SERVICE_DONE, (c.handle, status), conn=c.handle)


class DiscoverCharacteristics(Proc):
    def __init__(self, start, end, uuid=None):
        self.s = start
        self.e = end
        self.uuid = None if uuid is None else UUID(uuid)
        self.next = start
        self.pending = None  # (def_handle, value_handle, props, uuid)

    def start(self, ble, c):
        ble._att_send(c, struct.pack("<BHHH", G.READ_BY_TYPE_REQ, self.next, self.e, 0x2803))

    def _emit(self, ble, c, end):
        d, vh, props, u = self.pending
        self.pending = None
        if self.uuid is None or u == self.uuid:
            ble._irq(IRQ_GATTC_CHARACTERISTIC_RESULT, (c.handle, end, vh, props), uuid=u, conn=c.handle)

    def _finish(self, ble, c, status):
        if self.pending is not None:
            self._emit(ble, c, self.e)
        if ble._char_disc is self:
            ble._char_disc = None
        ble._irq(IRQ_GATTC_CHARACTERISTIC_DONE, (c.handle, status), conn=c.handle)
        return True

    def on_rsp(self, ble, c, p):
        if p[0] == G.ERROR_RSP:
            _h, code = _att_err(p)
            return self._finish(ble, c, 0 if code == G.E_ATTR_NOT_FOUND else 0x100 + code)
        n = p[1]
        body = p[2:]
        last = self.e
        for i in range(0, len(body) - n + 1, n):
            d, props, vh = struct.unpack_from("<HBH", body, i)
            u = UUID(body[i + 5: i + n])
            if self.pending is not None:
                self._emit(ble, c, d - 1)
            self.pending = (d, vh, props, u)
            last = vh
        if last >= self.e:
            return self._finish(ble, c, 0)
        self.next = last + 1
        self.start(ble, c)
        return False

    def abort(self, ble, c, status):
        if ble._char_disc is self:
            ble._char_disc = None
        ble._irq(IRQ_GATTC_CHARACTERISTIC_DONE, (c.handle, status), conn=c.handle)


class DiscoverDescriptors(Proc):
    def __init__(self, start, end):
        self.next = start + 1  # NimBLE starts after the characteristic value handle
        self.e = end

    def start(self, ble, c):
        if self.next > self.e:
            ble._world.schedule(0, self._empty, ble, c)
            return
        ble._att_send(c, struct.pack("<BHH", G.FIND_INFO_REQ, self.next, self.e))

    def _empty(self, ble, c):
        if c.gattc and c.gattc[0] is self:
            c.gattc.pop(0)
            ble._irq(IRQ_GATTC_DESCRIPTOR_DONE, (c.handle, 0), conn=c.handle)
            ble._gattc_next(c)

    def on_rsp(self, ble, c, p):
        if p[0] == G.ERROR_RSP:
            _h, code = _att_err(p)
            ble._irq(IRQ_GATTC_DESCRIPTOR_DONE, (c.handle, 0 if code == G.E_ATTR_NOT_FOUND else 0x100 + code),
                     conn=c.handle)
            return True
        fmt = p[1]
        w = 2 + (2 if fmt == 1 else 16)
        body = p[2:]
        last = self.e
        for i in range(0, len(body) - w + 1, w):
            h = struct.unpack_from("<H", body, i)[0]
            ble._irq(IRQ_GATTC_DESCRIPTOR_RESULT, (c.handle, h), uuid=UUID(body[i + 2: i + w]), conn=c.handle)
            last = h
        if last >= self.e:
            ble._irq(IRQ_GATTC_DESCRIPTOR_DONE, (c.handle, 0), conn=c.handle)
            return True
        self.next = last + 1
        self.start(ble, c)
        return False

    def abort(self, ble, c, status):
        ble._irq(IRQ_GATTC_DESCRIPTOR_DONE, (c.handle, status), conn=c.handle)


class Read(Proc):
    def __init__(self, handle):
        self.h = handle

    def start(self, ble, c):
        ble._att_send(c, struct.pack("<BH", G.READ_REQ, self.h))

    def on_rsp(self, ble, c, p):
        if p[0] == G.READ_RSP:
            ble._irq(IRQ_GATTC_READ_RESULT, (c.handle, self.h), bufs=(p[1:],), conn=c.handle)
            ble._irq(IRQ_GATTC_READ_DONE, (c.handle, self.h, 0), conn=c.handle)
        else:
            _h, code = _att_err(p) if p[0] == G.ERROR_RSP else (0, 0x0E)
            ble._irq(IRQ_GATTC_READ_DONE, (c.handle, self.h, 0x100 + code), conn=c.handle)
        return True

    def abort(self, ble, c, status):
        ble._irq(IRQ_GATTC_READ_DONE, (c.handle, self.h, status), conn=c.handle)


class Write(Proc):
    def __init__(self, handle, data):
        self.h = handle
        self.data = data

    def start(self, ble, c):
        ble._att_send(c, struct.pack("<BH", G.WRITE_REQ, self.h) + self.data[: c.mtu - 3])

    def on_rsp(self, ble, c, p):
        if p[0] == G.WRITE_RSP:
            status = 0
        else:
            _h, code = _att_err(p) if p[0] == G.ERROR_RSP else (0, 0x0E)
            status = 0x100 + code
        ble._irq(IRQ_GATTC_WRITE_DONE, (c.handle, self.h, status), conn=c.handle)
        return True

    def abort(self, ble, c, status):
        ble._irq(IRQ_GATTC_WRITE_DONE, (c.handle, self.h, status), conn=c.handle)
