import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as aml from '../../../src-emulator/firmware/aml';
import { buildAcpi, buildTableLoader, checksum } from '../../../src-emulator/firmware/acpi';
import { buildMpTables } from '../../../src-emulator/firmware/mptable';
import { buildSmbios } from '../../../src-emulator/firmware/smbios';
import { buildE820, encodeE820, E820_RAM, E820_ACPI, E820_RESERVED } from '../../../src-emulator/firmware/e820';

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true);
const sig = (b: Uint8Array, o: number, n = 4) => String.fromCharCode(...b.subarray(o, o + n));

test('AML PkgLength uses 1..4 bytes and counts itself', () => {
  assert.deepEqual([...aml.pkgLength(0x3e)], [0x3f]);
  // 0x3f + 2 bytes = 0x41: two-byte form, low nibble 1, next byte 4.
  assert.deepEqual([...aml.pkgLength(0x3f)], [0x41, 0x04]);
  assert.deepEqual([...aml.pkgLength(0xffd)], [0x4f, 0xff]);
  const three = aml.pkgLength(0x1000);
  assert.equal(three[0] >> 6, 2);
  const total = (three[0] & 0x0f) | (three[1] << 4) | (three[2] << 12);
  assert.equal(total, 0x1000 + 3);
});

test('AML integers, strings, names and EISA ids encode as ACPI specifies', () => {
  assert.deepEqual([...aml.integer(0)], [0x00]);
  assert.deepEqual([...aml.integer(1)], [0x01]);
  assert.deepEqual([...aml.integer(0x0a)], [0x0a, 0x0a]);
  assert.deepEqual([...aml.integer(0x1234)], [0x0b, 0x34, 0x12]);
  assert.deepEqual([...aml.integer(0x0001ffff)], [0x0c, 0xff, 0xff, 0x01, 0x00]);
  assert.deepEqual([...aml.string('AB')], [0x0d, 0x41, 0x42, 0x00]);
  assert.deepEqual([...aml.nameString('\\_SB')], [0x5c, 0x5f, 0x53, 0x42, 0x5f]);
  assert.deepEqual([...aml.nameString('A.B')], [0x2e, 0x41, 0x5f, 0x5f, 0x5f, 0x42, 0x5f, 0x5f, 0x5f]);
  // EisaId("PNP0A03") == 0x030AD041
  assert.deepEqual([...aml.eisaId('PNP0A03')], [0x0c, 0x41, 0xd0, 0x0a, 0x03]);
  assert.throws(() => aml.eisaId('pnp0a03'));
  assert.throws(() => aml.integer(-1));
});

test('ACPI tables: signatures, lengths, checksums and pointers', () => {
  const base = 0x07ff0000;
  const b = buildAcpi(base, { serialPorts: 1 });
  for (const s of ['DSDT', 'FACP', 'APIC', 'RSDT'] as const) {
    const off = b.offsets[s];
    assert.equal(sig(b.tables, off), s);
    const len = u32(b.tables, off + 4);
    assert.equal(checksum(b.tables, off, len), 0, `${s} checksum`);
  }
  assert.equal(sig(b.tables, b.offsets.FACS), 'FACS');
  assert.equal(b.offsets.FACS % 64, 0);
  assert.equal(sig(b.rsdp, 0, 8), 'RSD PTR ');
  assert.equal(checksum(b.rsdp, 0, 20), 0);
  assert.equal(u32(b.rsdp, 16), base + b.offsets.RSDT);
  const fadt = b.offsets.FACP;
  assert.equal(u32(b.tables, fadt + 4), 116);
  assert.equal(u32(b.tables, fadt + 36), base + b.offsets.FACS);
  assert.equal(u32(b.tables, fadt + 40), base + b.offsets.DSDT);
  assert.equal(u32(b.tables, fadt + 56), 0xb000);
  assert.equal(u32(b.tables, fadt + 64), 0xb004);
  assert.equal(u32(b.tables, fadt + 76), 0xb008);
  assert.equal(u32(b.tables, fadt + 80), 0xafe0);
  assert.equal(new DataView(b.tables.buffer).getUint16(fadt + 46, true), 9);
  const rsdt = b.offsets.RSDT;
  assert.equal(u32(b.tables, rsdt + 4), 44);
  assert.deepEqual([u32(b.tables, rsdt + 36), u32(b.tables, rsdt + 40)], [base + fadt, base + b.offsets.APIC]);
});

test('MADT: one enabled CPU, the IOAPIC, IRQ0->GSI2 and a level SCI override', () => {
  const b = buildAcpi(0);
  const t = b.tables.subarray(b.offsets.APIC, b.offsets.APIC + u32(b.tables, b.offsets.APIC + 4));
  assert.equal(u32(t, 36), 0xfee00000);
  const entries: number[][] = [];
  for (let o = 44; o < t.length; o += t[o + 1]) entries.push([...t.subarray(o, o + t[o + 1])]);
  assert.equal(entries.filter((e) => e[0] === 0).length, 1);
  const ioapic = entries.find((e) => e[0] === 1)!;
  assert.equal(u32(Uint8Array.from(ioapic), 4), 0xfec00000);
  const overrides = entries.filter((e) => e[0] === 2);
  const irq0 = overrides.find((e) => e[3] === 0)!;
  assert.equal(u32(Uint8Array.from(irq0), 4), 2);
  const sci = overrides.find((e) => e[3] === 9)!;
  assert.equal(sci[8] | (sci[9] << 8), 0x000d);
});

test('DSDT holds \\_S5 as a 4-element package and a PNP0C0C power button', () => {
  const b = buildAcpi(0);
  const d = b.tables.subarray(b.offsets.DSDT, b.offsets.DSDT + u32(b.tables, b.offsets.DSDT + 4));
  const bytes = [...d];
  const s5 = bytes.findIndex((_, i) => d[i] === 0x08 && d[i + 1] === 0x5c && sig(d, i + 2) === '_S5_');
  assert.ok(s5 > 0, '\\_S5 NameOp present');
  assert.equal(d[s5 + 6], 0x12, 'PackageOp');
  assert.equal(d[s5 + 8], 4, 'four elements');
  const pwrb = Uint8Array.from(aml.eisaId('PNP0C0C'));
  const hit = bytes.findIndex((_, i) => pwrb.every((v, k) => d[i + k] === v));
  assert.ok(hit > 0);
});

const hasIasl = spawnSync('iasl', ['-v']).status === 0;

test(
  'iasl (acpica-tools) disassembles and recompiles our DSDT without errors',
  { skip: hasIasl ? false : 'iasl not installed (apt-get install acpica-tools)' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxwood-acpi-'));
    try {
      const b = buildAcpi(0x7ff0000, { serialPorts: 2 });
      for (const s of ['DSDT', 'FACP', 'APIC', 'RSDT'] as const) {
        const off = b.offsets[s];
        writeFileSync(join(dir, `${s}.dat`), b.tables.subarray(off, off + u32(b.tables, off + 4)));
        const out = execFileSync('iasl', ['-d', `${s}.dat`], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        assert.doesNotMatch(out, /error/i, `${s}: ${out}`);
      }
      const dsl = readFileSync(join(dir, 'DSDT.dsl'), 'utf8');
      assert.match(dsl, /Name \(\\_S5, Package \(0x04\)/);
      assert.match(dsl, /EisaId \("PNP0A03"\)/);
      assert.match(dsl, /EisaId \("PNP0C0C"\)/);
      assert.match(dsl, /IRQNoFlags \(\)\s*\{1\}/);
      // PCI0 bridge windows: bus numbers, the I/O ranges around 0xCF8 and the PCI hole.
      assert.match(dsl, /WordBusNumber \(ResourceProducer, MinFixed, MaxFixed, PosDecode,\s*0x0000,[^)]*0x00FF/);
      assert.match(dsl, /WordIO \(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,\s*0x0000,\s*\/\/ Granularity\s*0x0D00/);
      assert.match(
        dsl,
        /DWordMemory \(ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,\s*0x00000000,\s*\/\/ Granularity\s*0xE0000000,\s*\/\/ Range Minimum\s*0xFEBFFFFF/,
      );
      const res = spawnSync('iasl', ['-tc', 'DSDT.dsl'], { cwd: dir, encoding: 'utf8' });
      assert.equal(res.status, 0, res.stdout + res.stderr);
      assert.match(res.stdout + res.stderr, /0 Errors, 0 Warnings/);
      const facp = readFileSync(join(dir, 'FACP.dsl'), 'utf8');
      assert.match(facp, /PM1A Event Block Address : 0000B000/);
      assert.doesNotMatch(facp, /Invalid|Incorrect checksum/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('table-loader script: allocate, pointers, then checksums, 128 bytes each', () => {
  const b = buildAcpi(0);
  const loader = buildTableLoader(b, 'etc/acpi/tables', 'etc/acpi/rsdp');
  assert.equal(loader.length % 128, 0);
  const types = [];
  for (let o = 0; o < loader.length; o += 128) types.push(u32(loader, o));
  assert.deepEqual(types.slice(0, 2), [1, 1]);
  const firstChecksum = types.indexOf(3);
  assert.ok(types.slice(2, firstChecksum).every((t) => t === 2));
  assert.ok(types.slice(firstChecksum).every((t) => t === 3));
  // Simulate the loader: place tables at 0x1000000, rsdp in the F segment, patch, fix checksums.
  const tables = b.tables.slice();
  const rsdp = b.rsdp.slice();
  const files: Record<string, { data: Uint8Array; addr: number }> = {
    'etc/acpi/tables': { data: tables, addr: 0x1000000 },
    'etc/acpi/rsdp': { data: rsdp, addr: 0xf5000 },
  };
  const name = (o: number) => new TextDecoder().decode(loader.subarray(o, o + 56)).replace(/\0.*$/s, '');
  for (let o = 0; o < loader.length; o += 128) {
    const t = u32(loader, o);
    if (t === 2) {
      const dst = files[name(o + 4)].data;
      const off = u32(loader, o + 116);
      new DataView(dst.buffer).setUint32(off, u32(dst, off) + files[name(o + 60)].addr, true);
    } else if (t === 3) {
      const f = files[name(o + 4)].data;
      const at = u32(loader, o + 60);
      f[at] = (f[at] - checksum(f, u32(loader, o + 64), u32(loader, o + 68))) & 0xff;
    }
  }
  assert.equal(u32(rsdp, 16), 0x1000000 + b.offsets.RSDT);
  assert.equal(checksum(rsdp, 0, 20), 0);
  for (const s of ['DSDT', 'FACP', 'APIC', 'RSDT'] as const) assert.equal(checksum(tables, b.offsets[s], u32(tables, b.offsets[s] + 4)), 0);
  assert.equal(u32(tables, b.offsets.FACP + 40), 0x1000000 + b.offsets.DSDT);
});

test('MP tables: floating pointer and config table checksums, entry counts', () => {
  const { floating, config } = buildMpTables(0xf0100, [{ slot: 3, pin: 1 }]);
  assert.equal(sig(floating, 0), '_MP_');
  assert.equal(checksum(floating, 0, 16), 0);
  assert.equal(u32(floating, 4), 0xf0100);
  assert.equal(sig(config, 0), 'PCMP');
  assert.equal(checksum(config, 0, config.length), 0);
  const count = config[34] | (config[35] << 8);
  // cpu + 2 buses + ioapic + ExtINT + 15 ISA + 1 PCI + 2 local
  assert.equal(count, 1 + 2 + 1 + 1 + 15 + 1 + 2);
  let o = 44;
  const types: number[] = [];
  for (let i = 0; i < count; i++) {
    types.push(config[o]);
    o += config[o] === 0 ? 20 : 8;
  }
  assert.equal(o, config.length);
  assert.deepEqual([...new Set(types)], [0, 1, 2, 3, 4]);
});

test('SMBIOS: entry point checksums and the structure list ends with type 127', () => {
  const { entry, table } = buildSmbios(0xf0800, { memoryBytes: 256 * 1024 * 1024 });
  assert.equal(sig(entry, 0), '_SM_');
  assert.equal(checksum(entry, 0, 31), 0);
  assert.equal(sig(entry, 16, 5), '_DMI_');
  assert.equal(checksum(entry, 16, 15), 0);
  assert.equal(entry[22] | (entry[23] << 8), table.length);
  const types: number[] = [];
  let o = 0;
  while (o < table.length) {
    types.push(table[o]);
    o += table[o + 1];
    while (!(table[o] === 0 && table[o + 1] === 0)) o++;
    o += 2;
  }
  assert.equal(o, table.length);
  assert.deepEqual(types, [0, 1, 3, 4, 16, 17, 19, 32, 127]);
  assert.equal(entry[28] | (entry[29] << 8), types.length);
  // Type 17 size field in MiB.
  let p = 0;
  for (let i = 0; i < 5; i++) {
    p += table[p + 1];
    while (!(table[p] === 0 && table[p + 1] === 0)) p++;
    p += 2;
  }
  assert.equal(table[p], 17);
  assert.equal(table[p + 12] | (table[p + 13] << 8), 256);
});

test('E820 map: base RAM, EBDA, BIOS, RAM to the ACPI region, no overlaps', () => {
  const ram = 128 * 1024 * 1024;
  const map = buildE820(ram);
  assert.deepEqual(map[0], { base: 0, length: 0x9fc00, type: E820_RAM });
  assert.ok(map.some((e) => e.base === 0x9fc00 && e.type === E820_RESERVED));
  const high = map.find((e) => e.base === 0x100000)!;
  assert.equal(high.type, E820_RAM);
  const acpi = map.find((e) => e.type === E820_ACPI)!;
  assert.equal(acpi.base, high.base + high.length);
  assert.equal(acpi.base + acpi.length, ram);
  const sorted = [...map].sort((a, b) => a.base - b.base);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1].base + sorted[i - 1].length <= sorted[i].base);
  const enc = encodeE820(map);
  assert.equal(enc.length, 20 * map.length);
  assert.equal(u32(enc, 20 + 16), map[1].type);
});
