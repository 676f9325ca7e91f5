/**
 * The mailbox's queues are rings that grow and shrink (mailbox.ts): whatever
 * the pattern of posts, messages and ready nodes come out in the order they
 * went in, and a handler that throws stops nothing.
 */
import { describe, expect, it } from "vitest";
import { Mailbox } from "../src/mailbox.js";

type Message = { kind: "m"; n: number };

describe("the mailbox's queues", () => {
  it("hand out messages and ready nodes first in, first out, across growth, wrap-around and trimming", () => {
    for (let round = 0; round < 2; round++) {
      const handled: string[] = [];
      const readyExpected: string[] = [];
      let next = 1;
      // A fixed pseudo-random cascade: each message enqueues 0 to 2 more and sometimes a ready node,
      // so the message ring grows to thousands, then empties and wraps around.
      let seed = 7 + round;
      const random = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const mailbox: Mailbox<Message, number> = new Mailbox<Message, number>({
        message: (message) => {
          handled.push(`m${message.n}`);
          const more = random() < 0.1 ? 0 : random() < 0.5 ? 1 : 2;
          for (let i = 0; i < more && next < 20_000; i++) mailbox.enqueue({ kind: "m", n: next++ });
          if (random() < 0.2) {
            mailbox.pushReady(message.n);
            readyExpected.push(`r${message.n}`);
          }
        },
        ready: (node) => handled.push(`r${node}`),
        crashed: (what, error) => handled.push(`crashed ${what}: ${String(error)}`),
        idle: () => undefined,
      });
      mailbox.post({ kind: "m", n: 0 });
      const messages = handled.filter((item) => item.startsWith("m"));
      expect(messages.length).toBeGreaterThan(1000);
      // Messages in the order they were queued (by number), every ready node after the last message.
      expect(messages).toEqual(messages.map((_, n) => `m${n}`));
      expect(handled.slice(messages.length)).toEqual(readyExpected);
    }
  });

  it("goes on with the next message after a handler throws", () => {
    const handled: number[] = [];
    const crashes: string[] = [];
    const mailbox = new Mailbox<Message, number>({
      message: (message) => {
        if (message.n % 3 === 0) throw new Error(`bad ${message.n}`);
        handled.push(message.n);
      },
      ready: () => undefined,
      crashed: (what, error) => crashes.push(`${what}: ${(error as Error).message}`),
      idle: () => undefined,
    });
    for (let n = 1; n <= 40; n++) mailbox.post({ kind: "m", n });
    expect(handled).toEqual(Array.from({ length: 40 }, (_, i) => i + 1).filter((n) => n % 3 !== 0));
    expect(crashes).toHaveLength(13);
  });
});
