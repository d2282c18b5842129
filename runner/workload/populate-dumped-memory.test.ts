import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import protobuf from "protobufjs/minimal.js";
import { afterAll, describe, expect, it } from "vitest";
import { populateDumpedMemory } from "./populate-dumped-memory.ts";

const f = { scratch: mkdtempSync(path.join(tmpdir(), "stasis-populate-")) };
afterAll(() => rmSync(f.scratch, { recursive: true, force: true }));

// Images written the way criu writes them (images/mm.proto, vma.proto, pagemap.proto), for the cases a real dump
// does not reliably hold; real dumps are marked in the runtimes' conformance suite (conformance.ts).
const PAGE = 4096;
const MAP_POPULATE = 0x8000;
const ANON = { prot: 3, flags: 0x22, status: 0x201 }; // read-write, MAP_PRIVATE | MAP_ANONYMOUS, regular + anon private
interface Vma {
  start: number;
  pages: number;
  prot: number;
  flags: number;
  status: number;
}
interface Dumped {
  vaddr: number;
  pages: number;
  flags: number; // PE_PRESENT = 4, PE_PARENT = 1
}

function imageFile(magic: number, entries: Uint8Array[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x54564319, 0);
  head.writeUInt32LE(magic, 4);
  return Buffer.concat([head, ...entries.flatMap((e) => [Buffer.from(new Uint32Array([e.length]).buffer), Buffer.from(e)])]);
}

function mmImage(vmas: Vma[]): Buffer {
  const mm = protobuf.Writer.create();
  for (let field = 1; field <= 11; field++) mm.uint32(field << 3).uint64(0x400000 + field * 0x1000);
  mm.uint32(12 << 3).uint32(5); // exe_file_id
  for (const auxv of [33, 0x7ffd_1234_5000, 16, 0xbfebfbff]) mm.uint32(13 << 3).uint64(auxv);
  for (const v of vmas) {
    const vma = protobuf.Writer.create();
    vma.uint32(1 << 3).uint64(v.start).uint32(2 << 3).uint64(v.start + v.pages * PAGE).uint32(3 << 3).uint64(0).uint32(4 << 3).uint64(0);
    vma.uint32(5 << 3).uint32(v.prot).uint32(6 << 3).uint32(v.flags).uint32(7 << 3).uint32(v.status).uint32(8 << 3).sint64(-1).uint32(9 << 3).uint64(1 << 14);
    mm.uint32((14 << 3) | 2).bytes(vma.finish());
  }
  mm.uint32(15 << 3).int32(1).uint32(17 << 3).bool(false);
  return imageFile(0x57492820, [mm.finish()]);
}

function pagemapImage(dumped: Dumped[]): Buffer {
  const head = protobuf.Writer.create().uint32(1 << 3).uint32(1).finish();
  const entries = dumped.map((d) => protobuf.Writer.create().uint32(1 << 3).uint64(d.vaddr).uint32(2 << 3).uint32(d.pages).uint32(4 << 3).uint32(d.flags).finish());
  return imageFile(0x56084025, [head, ...entries]);
}

function writeDump(dir: string, pid: number, vmas: Vma[], dumped: Dumped[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `pagemap-${pid}.img`), pagemapImage(dumped));
  const mm = path.join(dir, `mm-${pid}.img`);
  writeFileSync(mm, mmImage(vmas));
  return mm;
}

const at = (n: number) => 0x7f00_0000_0000 + n * 0x100_0000;

describe("populateDumpedMemory", () => {
  it("marks the private anonymous writable areas the dump holds 7/8 or more of, and leaves every other byte and the file's owner and mode", () => {
    const vmas: Vma[] = [
      { start: at(1), pages: 64, ...ANON }, // all dumped: marked
      { start: at(2), pages: 64, ...ANON }, // 2 of 64: its holes would cost memory the task did not have
      { start: at(3), pages: 64, ...ANON }, // 56 of 64, in two runs: exactly 7/8, marked
      { start: at(4), pages: 64, ...ANON }, // 55 of 64
      { start: at(5), pages: 64, prot: 3, flags: 0x02, status: 0x41 }, // a file's private mapping
      { start: at(6), pages: 64, prot: 3, flags: 0x122, status: 0x203 }, // a stack (MAP_GROWSDOWN)
      { start: at(7), pages: 64, prot: 1, flags: 0x22, status: 0x201 }, // read-only
      { start: at(8), pages: 64, ...ANON }, // its pages are in a parent image, not this one
      { start: at(9), pages: 64, prot: 3, flags: 0x22, status: 0x221 }, // the heap (brk): marked
    ];
    const dumped: Dumped[] = [
      { vaddr: at(1), pages: 64, flags: 4 },
      { vaddr: at(2) + 10 * PAGE, pages: 2, flags: 4 },
      { vaddr: at(3), pages: 30, flags: 4 },
      { vaddr: at(3) + 38 * PAGE, pages: 26, flags: 4 },
      { vaddr: at(4), pages: 55, flags: 4 },
      { vaddr: at(5), pages: 64, flags: 4 },
      { vaddr: at(6), pages: 64, flags: 4 },
      { vaddr: at(7), pages: 64, flags: 4 },
      { vaddr: at(8), pages: 64, flags: 1 },
      { vaddr: at(9), pages: 64, flags: 4 },
    ].reverse(); // in no order: criu writes them ascending, nothing here relies on it
    const dir = path.join(f.scratch, "synthetic");
    const mm = writeDump(dir, 41, vmas, dumped);
    chmodSync(mm, 0o640);
    const owner = process.getuid?.() === 0 ? { uid: 54_321, gid: 54_322 } : null;
    if (owner) chownSync(mm, owner.uid, owner.gid);

    expect(populateDumpedMemory(dir)).toEqual({ vmas: 3, pages: 192, skipped: [] });
    const marked = new Set([at(1), at(3), at(9)]);
    expect(readFileSync(mm)).toEqual(mmImage(vmas.map((v) => (marked.has(v.start) ? { ...v, flags: v.flags | MAP_POPULATE } : v))));
    const stat = statSync(mm);
    expect(stat.mode & 0o777).toBe(0o640);
    if (owner) expect({ uid: stat.uid, gid: stat.gid }).toEqual(owner);

    // A restore of the same dump again (a retry, the holder's second try) finds it marked and changes nothing,
    // told so by the file beside the images or, without it, by the marks themselves.
    const once = readFileSync(mm);
    expect(populateDumpedMemory(dir)).toEqual({ vmas: 0, pages: 0, skipped: [] });
    rmSync(path.join(dir, "stasis-populated"));
    expect(populateDumpedMemory(dir)).toEqual({ vmas: 0, pages: 0, skipped: [] });
    expect(readFileSync(mm)).toEqual(once);
  });

  it("leaves an image it cannot read as it was, says which and why, and still marks the tree's other tasks", () => {
    expect(populateDumpedMemory(path.join(f.scratch, "no-such-dump")).skipped).toEqual([expect.stringMatching(/no-such-dump: ENOENT/)]);
    const dir = path.join(f.scratch, "broken");
    const vmas = [{ start: at(1), pages: 16, ...ANON }];
    const dumped = [{ vaddr: at(1), pages: 16, flags: 4 }];
    writeDump(dir, 7, vmas, dumped);
    const truncated = writeDump(dir, 8, vmas, dumped);
    writeFileSync(truncated, readFileSync(truncated).subarray(0, -3));
    const noPagemap = writeDump(dir, 9, vmas, dumped);
    writeDump(path.join(f.scratch, "elsewhere"), 10, vmas, dumped);
    symlinkSync(path.join(f.scratch, "elsewhere", "mm-10.img"), path.join(dir, "mm-10.img"));
    writeFileSync(path.join(dir, "pagemap-10.img"), pagemapImage(dumped));
    writeFileSync(path.join(dir, "pagemap-9.img"), "not an image");
    const before = [truncated, noPagemap, path.join(f.scratch, "elsewhere", "mm-10.img")].map((file) => readFileSync(file));

    const marks = populateDumpedMemory(dir);
    expect(marks.vmas).toBe(1); // mm-7.img
    expect(marks.skipped.sort()).toEqual([
      expect.stringMatching(/^mm-10\.img: .*ELOOP/), // a link is not followed: the file it names is not this dump's
      expect.stringMatching(/^mm-8\.img: mm-8\.img ends inside an entry/),
      expect.stringMatching(/^mm-9\.img: pagemap-9\.img does not start with criu's image magic/),
    ]);
    expect([truncated, noPagemap, path.join(f.scratch, "elsewhere", "mm-10.img")].map((file) => readFileSync(file))).toEqual(before);
  });
});
