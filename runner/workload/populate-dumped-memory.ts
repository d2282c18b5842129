// A restore's memory, allocated in one call per mapping instead of one fault per page.
//
// criu's restorer maps each private anonymous area of the task fresh and reads the dumped pages into
// it, so every page is allocated by its own page fault. On the VMs Stasis was measured on, a fault
// costs ~12 µs (touching 37 MiB of fresh memory page by page: ~118 ms; `mmap(MAP_POPULATE)` of the same
// 37 MiB: 7–9 ms), and in a raw `criu restore -v4` of a 20 MB Node task one preadv of its 9,200 pages
// was 127 of 152 ms. criu maps each area with the mmap flags its image records (criu/mem.c,
// premap_private_vma), so MAP_POPULATE set there has the kernel allocate the area's pages at once.
// Only areas the dump holds nearly all pages of are marked: allocating an area's holes costs memory
// the task did not have.
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import protobuf from "protobufjs/minimal.js";

// mmap(2) flags and prot bits, and criu's vma status bits (criu/include/image.h) and pagemap flags (pagemap.h).
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_GROWSDOWN = 0x100;
const MAP_POPULATE = 0x8000;
const MAP_HUGETLB = 0x40000;
const PROT_WRITE = 0x2;
const VMA_AREA_REGULAR = 1 << 0;
const VMA_AREA_HEAP = 1 << 5;
const VMA_ANON_PRIVATE = 1 << 9;
const PE_PRESENT = 1 << 2;
const PAGE_SIZE = 4096;
/** criu's magic at the head of every image file (IMG_COMMON_MAGIC), before the image's own. */
const IMG_COMMON_MAGIC = 0x54564319;
/** mm_entry.vmas (images/mm.proto) and vma_entry's fields (images/vma.proto). */
const MM_VMAS = 14;
const VMA = { start: 1, end: 2, prot: 5, flags: 6, status: 7 } as const;
/** pagemap_entry's fields (images/pagemap.proto). */
const PAGEMAP = { vaddr: 1, compatNrPages: 2, inParent: 3, flags: 4, nrPages: 5 } as const;

/** Beside the images once they are marked (criu reads only the files it knows); it goes with them into the stored copy. */
const MARKED = "stasis-populated";
/** An area counts when the dump holds at least this share of its pages. */
const MIN_DUMPED_SHARE = 7 / 8;
/** Image files this reads are a few KiB; anything far larger is not one criu wrote for a task. */
const MAX_IMAGE_BYTES = 64 * 2 ** 20;

export interface PopulateMarks {
  /** Areas marked MAP_POPULATE, and their pages (what the restore allocates at once). */
  vmas: number;
  pages: number;
  /** Images left as they were, each with why (one criu cannot read either, or a format this does not know). */
  skipped: string[];
}

/**
 * Marks, in the images of a dump in `imageDir`, the private anonymous writable areas whose pages the dump
 * holds (7/8 of them or more) to be mapped with MAP_POPULATE by the restore. Each `mm-<pid>.img` changed is
 * written over in place (writeImage: why), its owner and mode kept. An image this cannot read is left as it is, and
 * said so in `skipped`: the restore works without the marks.
 */
export function populateDumpedMemory(imageDir: string): PopulateMarks {
  const marks: PopulateMarks = { vmas: 0, pages: 0, skipped: [] };
  // Marked already (settleDump, then the restore): reading the images again would find nothing to mark.
  if (existsSync(path.join(imageDir, MARKED))) return marks;
  let names: string[];
  try {
    names = readdirSync(imageDir);
  } catch (error) {
    marks.skipped.push(`${imageDir}: ${error instanceof Error ? error.message : String(error)}`);
    return marks;
  }
  for (const name of names) {
    const pid = /^mm-(\d+)\.img$/.exec(name)?.[1];
    if (!pid) continue;
    try {
      const marked = markTask(path.join(imageDir, name), path.join(imageDir, `pagemap-${pid}.img`));
      marks.vmas += marked.vmas;
      marks.pages += marked.pages;
    } catch (error) {
      marks.skipped.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  writeFileSync(path.join(imageDir, MARKED), "");
  return marks;
}

function markTask(mmFile: string, pagemapFile: string): { vmas: number; pages: number } {
  const dumped = dumpedRanges(readImage(pagemapFile).entries.slice(1)); // the first entry is pagemap_head
  const mm = readImage(mmFile);
  if (mm.entries.length !== 1) throw new Error(`holds ${mm.entries.length} entries, not one mm_entry`);
  let vmas = 0;
  let pages = 0;
  // The entry again, as slices of the old one with each marked area's flags in between: one copy at the end.
  const pieces: Uint8Array[] = [];
  for (const field of readFields(mm.entries[0]!)) {
    const marked = field.no === MM_VMAS && field.body ? markVma(field.body, dumped) : null;
    if (!marked) {
      pieces.push(field.raw);
      continue;
    }
    vmas += 1;
    pages += marked.pages;
    const body = field.body!;
    const flags = varintField(VMA.flags, marked.flags);
    const length = body.length - (marked.old.end - marked.old.at) + flags.length;
    pieces.push(protobuf.Writer.create().uint32((MM_VMAS << 3) | 2).uint32(length).finish(), body.subarray(0, marked.old.at), flags, body.subarray(marked.old.end));
  }
  if (vmas > 0) writeImage(mmFile, mm.length, mm.head, pieces);
  return { vmas, pages };
}

/** A vma_entry's flags with MAP_POPULATE, where its old flags field was, and its pages; null: not an area to mark. */
function markVma(body: Uint8Array, dumped: Array<[number, number]>): { flags: number; old: Field; pages: number } | null {
  let start, end, prot, flags, status: Field | undefined;
  for (const field of readFields(body)) {
    if (field.no === VMA.start) start = field;
    else if (field.no === VMA.end) end = field;
    else if (field.no === VMA.prot) prot = field;
    else if (field.no === VMA.flags) flags = field;
    else if (field.no === VMA.status) status = field;
  }
  if (start?.value === undefined || end?.value === undefined || prot?.value === undefined || flags?.value === undefined || status?.value === undefined) throw new Error("a vma_entry lacks a required field");
  if (!populatable(prot.value, flags.value, status.value)) return null;
  const [from, to] = [start.value, end.value];
  let held = 0;
  for (let i = firstEndingAfter(dumped, from); i < dumped.length && dumped[i]![0] < to; i++) held += Math.min(to, dumped[i]![1]) - Math.max(from, dumped[i]![0]);
  if (held < (to - from) * MIN_DUMPED_SHARE) return null;
  return { flags: flags.value | MAP_POPULATE, old: flags, pages: (to - from) / PAGE_SIZE };
}

/** A private anonymous writable area of plain memory (the heap's included), not a stack nor huge pages, not marked already. */
function populatable(prot: number, flags: number, status: number): boolean {
  const anonPrivate = (flags & (MAP_PRIVATE | MAP_ANONYMOUS)) === (MAP_PRIVATE | MAP_ANONYMOUS);
  const special = flags & (MAP_GROWSDOWN | MAP_HUGETLB | MAP_POPULATE);
  return anonPrivate && !special && (prot & PROT_WRITE) !== 0 && (status & ~VMA_AREA_HEAP) === (VMA_AREA_REGULAR | VMA_ANON_PRIVATE);
}

/** The index of the first of `ranges` (ascending, apart) that ends after `at`. */
function firstEndingAfter(ranges: Array<[number, number]>, at: number): number {
  let [low, high] = [0, ranges.length];
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ranges[middle]![1] <= at) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The [start, end) byte ranges whose pages are in the dump's pages image, ascending. */
function dumpedRanges(entries: Uint8Array[]): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const entry of entries) {
    const values: Array<number | undefined> = [];
    for (const field of readFields(entry)) values[field.no] = field.value;
    const value = (no: number) => values[no];
    const vaddr = value(PAGEMAP.vaddr);
    const count = value(PAGEMAP.nrPages) ?? value(PAGEMAP.compatNrPages);
    if (vaddr === undefined || count === undefined) throw new Error("a pagemap_entry lacks its address or page count");
    const flags = value(PAGEMAP.flags);
    // Without flags (an older criu), pages not in a parent image are in this one.
    const present = flags === undefined ? !value(PAGEMAP.inParent) : (flags & PE_PRESENT) !== 0;
    if (present) ranges.push([vaddr, vaddr + count * PAGE_SIZE]);
  }
  return ranges.sort((a, b) => a[0] - b[0]);
}

interface Field {
  no: number;
  /** Where the field starts and ends in the message read. */
  at: number;
  end: number;
  /** The whole field as it was encoded, its tag included: what an unchanged field is written back as. */
  raw: Uint8Array;
  /** A varint's value (a number: the addresses and flags read here are below 2^53). */
  value?: number;
  /** A length-delimited field's bytes. */
  body?: Uint8Array;
}

function readFields(buffer: Uint8Array): Field[] {
  const reader = protobuf.Reader.create(buffer);
  const fields: Field[] = [];
  while (reader.pos < reader.len) {
    const at = reader.pos;
    const tag = reader.uint32();
    const wire = tag & 7;
    let value: number | undefined;
    let body: Uint8Array | undefined;
    if (wire === 0) value = readVarint(reader);
    else if (wire === 2) body = reader.bytes();
    else reader.skipType(wire);
    fields.push({ no: tag >>> 3, at, end: reader.pos, raw: buffer.subarray(at, reader.pos), value, body });
  }
  return fields;
}

/**
 * A varint as a number, exact below 2^53 (the addresses, sizes and flags read here are). protobufjs's `uint64()` gives
 * a Long where the `long` package happens to be installed and a number where not: this is the same either way.
 */
function readVarint(reader: protobuf.Reader): number {
  let value = 0;
  for (let shift = 1; ; shift *= 128) {
    if (reader.pos >= reader.len) throw new Error("a varint runs past its message");
    const byte = reader.buf[reader.pos++]!;
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return value;
    if (shift > 2 ** 63) throw new Error("a varint longer than ten bytes");
  }
}
const varintField = (no: number, value: number) => protobuf.Writer.create().uint32(no << 3).uint32(value).finish();

/** An image file: criu's two magic numbers, then entries, each a little-endian u32 size and a protobuf message. */
function readImage(file: string): { head: Buffer; entries: Buffer[]; length: number } {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  let bytes: Buffer;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MAX_IMAGE_BYTES) throw new Error(`${path.basename(file)} is not a criu image (${stat.isFile() ? `${stat.size} bytes` : "not a file"})`);
    bytes = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== IMG_COMMON_MAGIC) throw new Error(`${path.basename(file)} does not start with criu's image magic`);
  const entries: Buffer[] = [];
  for (let at = 8; at < bytes.length; ) {
    if (at + 4 > bytes.length) throw new Error(`${path.basename(file)} ends inside an entry's size`);
    const size = bytes.readUInt32LE(at);
    if (at + 4 + size > bytes.length) throw new Error(`${path.basename(file)} ends inside an entry (${size} bytes at ${at})`);
    entries.push(bytes.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
  return { head: bytes.subarray(0, 8), entries, length: bytes.length };
}

/**
 * Writes the marked image over `file`, from its start: marks only lengthen it, so nothing of the old one is left past
 * the end. In place, not by a rename: a rename over an existing file has ext4 flush the new one's data at once
 * (`auto_da_alloc`), and right after a dump, behind the dump's own 35 MiB of writes, that took 9–34 ms here against
 * ~1 ms in place. Nothing reads the images meanwhile (the store reads them after, a restore after that); should the
 * runner die mid-write, the dump was not stored yet and its local copy goes with the runner's next start.
 */
function writeImage(file: string, length: number, head: Buffer, entry: Uint8Array[]): void {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(entry.reduce((sum, piece) => sum + piece.length, 0));
  const bytes = Buffer.concat([head, size, ...entry]);
  if (bytes.length < length) throw new Error(`${path.basename(file)} would get shorter (${bytes.length} < ${length} bytes)`);
  const fd = openSync(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at, at);
  } finally {
    closeSync(fd);
  }
}

