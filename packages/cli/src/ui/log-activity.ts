// Owns turning a build's latest log line into the few words a live row shows: what changes from
// line to line. A compiler or linker command becomes the tool and the file it works on
// ("gcc src/exit/_Exit.c", "ld -o busybox_unstripped"), make's directory changes become
// "make: entering libbb"; anything else is the line itself (its start and end are kept when it
// is cut to fit). A long run of compiler flags looks the same on every line: that was the
// frozen-looking row this replaces.

import { stripTerminalControls } from "./format";

const TOOL = /^(?:[\w.+-]*-)?(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+|cpp|ld|ld\.bfd|ld\.gold|as|ar|ranlib|strip|objcopy|musl-gcc|libtool)(?:-\d+(?:\.\d+)*)?$/;
const SOURCE_FILE = /\.(?:c|cc|cpp|cxx|C|S|s|sx|m|f|f90|go|rs|asm)$/;
/** kbuild-style short lines: "  CC      applets/applets.o". */
const SHORT_FORM = /^\s*([A-Z][A-Z0-9_-]{1,9})\s{2,}(\S.*)$/;
const MAKE_DIRECTORY = /^(g?make(?:\[\d+\])?): (Entering|Leaving) directory ['`"](.+?)['"]$/;

/** The words a live row shows for this log line. */
export function activityOf(line: string): string {
  const text = stripTerminalControls(line).replaceAll("\t", " ").trim();
  const make = MAKE_DIRECTORY.exec(text);
  if (make) return `make: ${make[2]!.toLowerCase()} ${lastComponents(make[3]!, 2)}`;
  const short = SHORT_FORM.exec(text);
  if (short) return `${short[1]} ${short[2]!.trim()}`;
  const command = commandSummary(text);
  return command ?? text;
}

/** "gcc src/x.c" for a compiler or linker command line; undefined for anything else. */
function commandSummary(text: string): string | undefined {
  const words = text.split(/\s+/);
  const tool = words[0]?.split("/").pop() ?? "";
  if (!TOOL.test(tool)) return undefined;
  const sources = words.slice(1).filter((word) => SOURCE_FILE.test(word) && !word.startsWith("-"));
  if (sources.length > 0) return `${tool} ${sources[sources.length - 1]}${sources.length > 1 ? ` (+${sources.length - 1})` : ""}`;
  const output = words.indexOf("-o");
  if (output > 0 && words[output + 1]) return `${tool} -o ${words[output + 1]}`;
  const last = words.slice(1).filter((word) => !word.startsWith("-")).pop();
  return last ? `${tool} … ${last}` : tool;
}

function lastComponents(path: string, count: number): string {
  const parts = path.split("/").filter(Boolean);
  return parts.slice(-count).join("/") || path;
}
