"""Erases a board and writes a MicroPython firmware image with esptool.

    python tools/board/flash.py --port /dev/ttyUSB0 --board esp32 --firmware ESP32_GENERIC-v1.26.1.bin
                          [--no-erase] [--baud 460800] [--dry-run] [--force]

The offset comes from boards/<board>/board.json (0x1000 on the original ESP32,
0x0 on the S3 and C3: the downloadable images are merged bootloader + partition
table + app). Before touching the board it checks the image: an ESP image
(magic 0xE9) for this board's chip (the chip id in the extended header), with a
partition table where the merged image puts it (0x8000 on flash). An app-only
`build/firmware.bin` or an image for another chip is refused (--force overrides).
--dry-run prints the esptool commands.
"""

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.board.deploy import BOARDS, DeployError, list_boards, load_board  # noqa: E402

ESPTOOL = str(Path(sys.executable).with_name("esptool"))
# esp_image_header_t.chip_id (esp_app_format.h / esptool's IMAGE_CHIP_ID)
CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9, "esp32c2": 12, "esp32c6": 13, "esp32h2": 16}
PARTITION_TABLE = 0x8000
PARTITION_MAGIC = b"\xaa\x50"


def check_image(data, board):
    """Problems with this image for this board (an empty list when it fits)."""
    problems = []
    if len(data) < 24 or data[0] != 0xE9:
        return ["not an ESP firmware image (first byte %s, expected 0xe9)" % (hex(data[0]) if data else "none")]
    chip_id = data[12] | data[13] << 8
    want = CHIP_IDS.get(board["chip"])
    if want is not None and chip_id != want:
        names = {v: k for k, v in CHIP_IDS.items()}
        problems.append("image is for %s, board %s is %s" % (names.get(chip_id, "chip id %d" % chip_id),
                                                             board["name"], board["chip"]))
    pt = PARTITION_TABLE - board["flash_offset"]
    if data[pt:pt + 2] != PARTITION_MAGIC:
        problems.append("no partition table at flash 0x%x: this looks like an app-only image; "
                        "use the merged image from micropython.org (or build/.../firmware.bin from "
                        "`make firmware`, which is merged)" % PARTITION_TABLE)
    return problems


def esptool_commands(board, port, firmware, erase=True, baud=None):
    base = [ESPTOOL, "--chip", board["chip"], "--port", port]
    cmds = []
    if erase:
        cmds.append(base + ["erase-flash"])
    cmds.append(base + ["--baud", str(baud or board.get("flash_baud", 460800)),
                        "write-flash", hex(board["flash_offset"]), str(firmware)])
    return cmds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", help="serial port (e.g. /dev/ttyUSB0)")
    ap.add_argument("--board", default="esp32", help="one of: " + ", ".join(list_boards()))
    ap.add_argument("--firmware", required=True, help="the .bin image")
    ap.add_argument("--no-erase", action="store_true", help="write without erasing first (keeps the filesystem "
                    "only if the partition layout is unchanged)")
    ap.add_argument("--baud", type=int, default=None)
    ap.add_argument("--dry-run", action="store_true", help="print the esptool commands only")
    ap.add_argument("--force", action="store_true", help="flash even if the image looks wrong")
    ap.add_argument("--boards-dir", default=str(BOARDS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        board = load_board(args.board, args.boards_dir)
        fw = Path(args.firmware)
        if not fw.is_file():
            raise DeployError("no firmware image %s (download one from https://micropython.org/download/%s/)"
                              % (fw, board.get("micropython_board", "")))
        problems = check_image(fw.read_bytes(), board)
        for p in problems:
            print("flash: %s" % p, file=sys.stderr)
        if problems and not args.force:
            return 2
        if not args.port and not args.dry_run:
            raise DeployError("--port is required (or use --dry-run)")
        cmds = esptool_commands(board, args.port or "PORT", fw, not args.no_erase, args.baud)
        for cmd in cmds:
            print(" ".join(cmd))
            if not args.dry_run:
                r = subprocess.run(cmd)
                if r.returncode:
                    raise DeployError("esptool failed (exit %d)" % r.returncode)
        if not args.dry_run:
            print("flashed %s at 0x%x%s; next: make deploy PORT=%s BOARD=%s"
                  % (fw.name, board["flash_offset"], "" if args.no_erase else " (flash erased: bonds.db is gone)",
                     args.port, board["name"]))
        return 0
    except DeployError as e:
        print("flash: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
