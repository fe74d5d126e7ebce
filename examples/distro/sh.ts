// Owns writing build scripts in TypeScript: the `sh` template tag keeps backslashes as written
// (like String.raw, so sed and awk programs read as they would in a .sh file), and `\${` stands
// for a shell `${` while `${…}` interpolates a TypeScript value.

/** A shell script, with backslashes kept as written; write shell expansions as `\${name}`. */
export function sh(strings: TemplateStringsArray, ...values: Array<string | number>): string {
  let out = "";
  strings.raw.forEach((raw, i) => {
    out += raw.replace(/\\\$\{/g, "${");
    if (i < values.length) out += String(values[i]);
  });
  return out;
}
