// Owns a build's log: every byte to the log file, complete lines to the event stream, and the
// last lines kept in memory for the failure report.

import { createWriteStream, type WriteStream } from "node:fs";
import { LOG_TAIL_LINES } from "../types";

export class LogSink {
  private readonly file: WriteStream;
  private readonly tail: string[] = [];
  private partial = "";

  constructor(
    path: string,
    private readonly onLine: (line: string) => void,
    private readonly keep = LOG_TAIL_LINES,
  ) {
    this.file = createWriteStream(path);
  }

  write(chunk: Buffer): void {
    this.file.write(chunk);
    const text = this.partial + chunk.toString("utf8");
    const lines = text.split(/\r?\n|\r/);
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.push(line);
  }

  /** Lines written by Castle itself (not the build), marked so they stand out. */
  note(line: string): void {
    this.file.write(`castle: ${line}\n`);
    this.push(`castle: ${line}`);
  }

  lastLines(): string[] {
    return [...this.tail];
  }

  async close(): Promise<void> {
    if (this.partial) this.push(this.partial);
    this.partial = "";
    await new Promise<void>((resolve) => this.file.end(resolve));
  }

  private push(line: string): void {
    this.tail.push(line);
    if (this.tail.length > this.keep) this.tail.shift();
    this.onLine(line);
  }
}
