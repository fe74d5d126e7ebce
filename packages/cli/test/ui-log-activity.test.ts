// Tests what a live row shows of a build's latest log line (cli/src/ui/log-activity.ts): the file
// a compiler or linker works on, make's directory changes, kbuild's short lines, anything else
// as it is.

import { describe, expect, it } from "vitest";
import { activityOf } from "../src/ui/log-activity";

describe("activityOf", () => {
  it("turns compiler and linker commands into the tool and its file", () => {
    const flags = "-std=c99 -nostdinc -ffreestanding -fexcess-precision=standard -frounding-math -Wa,--noexecstack -D_XOPEN_SOURCE=700";
    expect(activityOf(`gcc ${flags} -c -o obj/src/exit/_Exit.lo src/exit/_Exit.c`)).toBe("gcc src/exit/_Exit.c");
    expect(activityOf(`x86_64-linux-musl-gcc ${flags} -c lua.c`)).toBe("x86_64-linux-musl-gcc lua.c");
    expect(activityOf(`/usr/bin/cc -O2 a.c b.c c.c -o prog`)).toBe("cc c.c (+2)");
    expect(activityOf("gcc -shared -o lib/libc.so obj/a.lo obj/b.lo -lgcc")).toBe("gcc -o lib/libc.so");
    expect(activityOf("ar rc lib/libc.a obj/a.o obj/b.o")).toBe("ar … obj/b.o");
    expect(activityOf("\x1b[32mcc\x1b[0m -c lua3.c")).toBe("cc lua3.c");
  });

  it("shortens make's directory changes and keeps kbuild's short lines", () => {
    expect(activityOf("make[2]: Entering directory '/build/busybox-1.35.0/libbb'")).toBe("make: entering busybox-1.35.0/libbb");
    expect(activityOf("  CC      applets/applets.o")).toBe("CC applets/applets.o");
    expect(activityOf("  LINK    busybox_unstripped")).toBe("LINK busybox_unstripped");
  });

  it("leaves other lines as they are (controls removed)", () => {
    expect(activityOf("checking for gcc... gcc")).toBe("checking for gcc... gcc");
    expect(activityOf("\tinstall -m 644 x /usr/include")).toBe("install -m 644 x /usr/include");
    expect(activityOf("make: 'all' is up to date.")).toBe("make: 'all' is up to date.");
  });
});
