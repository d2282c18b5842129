// App code: start a purchase, then complete its checkout with an event.
// Run with `npx tsx src/buy-ticket.ts` while `stasis dev` runs (it reads STASIS_API_URL/STASIS_API_KEY).
import { events, runs } from "stasis/sdk";
import { purchaseTicket } from "../trigger/purchase-ticket.ts";

const handle = await purchaseTicket.trigger({ showId: "dune-2026-11-28-2000", seats: ["F7", "F8"], email: "ada@example.com" });
console.log(`purchase started: ${handle.id}`);

// The run reserves seats, then freezes waiting for checkout. Find its reservation in the logs.
let reservationId: string | undefined;
for (let after = 0; !reservationId; ) {
  const page = await runs.logs(handle.id, { after, waitMs: 5000 });
  after = page.next;
  reservationId = page.data.map((line) => line.data?.reservationId).find((id): id is string => typeof id === "string");
}
console.log(`seats reserved (${reservationId}); checking out`);
await events.trigger({ event: "checkout", payload: { reservationId, cardToken: "tok_visa" } });

const run = await runs.poll(handle.id);
console.log(`${run.status}:`, run.output ?? run.error);
