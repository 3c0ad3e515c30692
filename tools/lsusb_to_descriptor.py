#!/usr/bin/env python3
"""Rebuild raw USB descriptor bytes from an `lsusb -v` text dump.

lsusb prints every descriptor as `bLength`, `bDescriptorType` and then each field of the
descriptor in wire order, one per line, named with the USB spec's Hungarian prefixes (b = 1
byte, w / bcd / id = 2, dw = 4, guid = 16, t = 3, bm = 1 or bControlSize bytes). This script
walks those lines, packs each field little-endian by its prefix and cuts or pads every
descriptor to its own bLength (lsusb prints fields past the end of a short descriptor, e.g.
"Warning: Descriptor too short" processing units of UVC 1.0 cameras, and we keep the bytes the
device really sent: bLength of them).

Output, for a dump NAME.txt:
  NAME.device.bin  the 18-byte device descriptor
  NAME.config.bin  the whole configuration descriptor (wTotalLength bytes), as
                   GET_DESCRIPTOR(CONFIGURATION) returns it
  NAME.strings.txt "index<TAB>text" of the string descriptors lsusb shows (iProduct, iSerial)
The configuration must add up to its wTotalLength. Two gaps of the dumps are handled and
reported: the 5-byte class-specific VideoControl interrupt endpoint descriptor, which this
lsusb did not print, is rebuilt from the spec; any other bytes lsusb did not show cannot be
rebuilt, and wTotalLength is then set to the bytes rebuilt (the difference is reported).

Usage: lsusb_to_descriptor.py OUT_DIR DUMP.txt...
"""
import os
import re
import sys

FIELD = re.compile(r'^\s+([a-z]+[A-Z][A-Za-z0-9]*|MaxPower)(\(\s*\d+\)|\[\s*\d+\])?\s+(.*)$')


def parse_number(name, text):
    text = text.strip()
    if name == 'MaxPower':  # "500mA": USB 2.0 stores units of 2 mA
        return int(re.match(r'(\d+)', text).group(1)) // 2
    if name.startswith('bcd'):  # "2.00" -> 0x0200, "0.11" -> 0x0011 (BCD digits)
        major, minor = text.split()[0].split('.')
        return (int(major, 16) << 8) | int(minor, 16)
    if name == 'dwClockFrequency':  # "13.500000MHz"
        mhz = re.match(r'([0-9.]+)MHz', text).group(1)
        return int(round(float(mhz) * 1e6))
    m = re.match(r'0x\s*([0-9a-fA-F]+)', text)  # lsusb prints "0x 9" for %2x fields
    if m:
        return int(m.group(1), 16)
    m = re.match(r'(-?\d+)', text)
    if m:
        return int(m.group(1))
    raise ValueError('%s: no number in %r' % (name, text))


def parse_guid(text):
    # lsusb prints the 16 bytes in wire order: {b0b1b2b3-b4b5-b6b7-b8b9-b10..b15}
    hexdigits = re.match(r'\{([0-9a-fA-F-]+)\}', text.strip()).group(1).replace('-', '')
    return bytes.fromhex(hexdigits)


def field_size(name, indexed, fields):
    control_size = None
    for n, _i, v in reversed(fields):
        if n == 'bControlSize':
            control_size = v
            break
    if name == 'MaxPower':
        return 1
    if name.startswith('guid'):
        return 16
    if name.startswith('bcd') or name.startswith('id'):
        return 2
    if name.startswith('dw'):
        return 4
    if name.startswith('w'):
        return 2
    if name.startswith('t'):  # tSamFreq: 3 bytes
        return 3
    if name == 'bmaControls':
        return control_size or 1
    if name == 'bmControls':
        # extension units print one byte per index; terminals and units print the whole mask
        if indexed or control_size is None:
            return 1
        return control_size
    if name.startswith('b') or name.startswith('i'):
        return 1
    raise ValueError('unknown field prefix: ' + name)


def descriptors(lines):
    """Yield (section, [(name, indexed, value-or-bytes)]) for each descriptor in the dump."""
    current = None
    section = None
    for line in lines:
        if line.startswith('Device Qualifier') or line.startswith('Device Status') or \
           line.startswith('Binary Object Store'):
            break
        m = FIELD.match(line)
        if not m:
            if line.strip().endswith(':') and not line.strip().startswith('**'):
                section = line.strip()
            continue
        name, index, value = m.group(1), m.group(2), m.group(3)
        if name == 'bLength':
            if current is not None:
                yield current
            current = (section, [])
        if current is None:
            continue
        if name.startswith('guid'):
            current[1].append((name, index, parse_guid(value)))
        elif name.startswith('i') and not name.startswith('id'):
            # "iSerial 1 E1CA2A7F": the index, and the string lsusb read
            parts = value.strip().split(None, 1)
            current[1].append((name, index, int(parts[0])))
            if len(parts) > 1 and int(parts[0]) != 0:
                current[1].append(('#string', parts[0], parts[1]))
        else:
            current[1].append((name, index, parse_number(name, value)))
    if current is not None:
        yield current


def pack(fields):
    out = bytearray()
    seen = []
    strings = []
    for name, index, value in fields:
        if name == '#string':
            strings.append((int(index), value))
            continue
        if isinstance(value, bytes):
            out += value
        else:
            size = field_size(name, index is not None, seen)
            out += int(value & ((1 << (8 * size)) - 1)).to_bytes(size, 'little')
        seen.append((name, index, value))
    length = fields[0][2]
    if len(out) < length:
        out += bytes(length - len(out))
    return bytes(out[:length]), strings


def convert(path, out_dir):
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    device = None
    config = bytearray()
    total_length = None
    strings = {}
    notes = []
    interface_class = interface_subclass = None
    for section, fields in descriptors(lines):
        raw, found = pack(fields)
        for idx, text in found:
            strings[idx] = text
        if raw[1] == 1 and device is None:
            device = raw
            continue
        if raw[1] == 2 and total_length is None:
            total_length = int.from_bytes(raw[2:4], 'little')
            config += raw
            continue
        if total_length is None:
            continue
        config += raw
        if raw[1] == 4:
            interface_class, interface_subclass = raw[5], raw[6]
        if raw[1] == 5 and (raw[3] & 3) == 3 and interface_class == 14 and interface_subclass == 1:
            # UVC 1.5 3.8.2.2: an interrupt endpoint of the VideoControl interface is followed by
            # a 5-byte class-specific endpoint descriptor (CS_ENDPOINT 0x25, EP_INTERRUPT 3,
            # wMaxTransferSize). The lsusb of these dumps did not print it; rebuild it with
            # wMaxTransferSize = the endpoint's wMaxPacketSize.
            config += bytes([5, 0x25, 3]) + raw[4:6]
            notes.append('inserted the 5-byte class-specific VC interrupt endpoint descriptor')
    if device is None or total_length is None:
        raise SystemExit('%s: no device or configuration descriptor' % path)
    if len(config) != total_length:
        # Descriptors lsusb did not print cannot be rebuilt: keep what the dump shows and make
        # the header agree with it, so the blob is what a device with these bytes would send.
        notes.append('dump wTotalLength %d, %d bytes not printed by lsusb; wTotalLength set '
                     'to the %d rebuilt bytes' % (total_length, total_length - len(config),
                                                  len(config)))
        config[2:4] = len(config).to_bytes(2, 'little')
    base = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
    with open(base + '.device.bin', 'wb') as f:
        f.write(device)
    with open(base + '.config.bin', 'wb') as f:
        f.write(config)
    with open(base + '.strings.txt', 'w', encoding='utf-8') as f:
        for idx in sorted(strings):
            f.write('%d\t%s\n' % (idx, strings[idx]))
    return len(config), notes


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for path in argv[2:]:
        n, notes = convert(path, out_dir)
        print('%s: %d configuration bytes' % (os.path.basename(path), n))
        for note in notes:
            print('  ' + note)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
