import { describe, expect, it } from "vitest";
import { OutputTail } from "./output-tail.ts";

describe("OutputTail", () => {
  it("keeps everything while under its limit", () => {
    const tail = new OutputTail(100);
    tail.append(Buffer.from("starting\n"));
    tail.append(Buffer.from("listening\n"));
    expect(tail.text()).toBe("starting\nlistening");
  });

  it("keeps only the last bytes, from the first whole line in them", () => {
    const tail = new OutputTail(20);
    for (let index = 1; index <= 50; index += 1) tail.append(Buffer.from(`line ${index}\n`));
    expect(tail.text()).toBe("line 49\nline 50");
    const exact = new OutputTail(24);
    for (let index = 1; index <= 50; index += 1) exact.append(Buffer.from(`line ${index}\n`));
    expect(exact.text()).toBe("line 48\nline 49\nline 50");
  });

  it("cuts a single line longer than the limit", () => {
    const tail = new OutputTail(8);
    tail.append(Buffer.from("0123456789abcdef"));
    expect(tail.text()).toBe("89abcdef");
  });
});
