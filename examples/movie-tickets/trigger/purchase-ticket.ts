import { events, logger, rollback, task } from "stasis/sdk";
import { callService } from "./services.ts";

export interface PurchasePayload {
  showId: string;
  seats: string[];
  email: string;
}

interface Reservation {
  id: string;
  total: number;
}

/**
 * Reserve seats, wait (frozen, for up to 15 minutes) for the customer to check out, charge the card,
 * issue the tickets and email them. If any step after the reservation fails, the compensations
 * registered so far run in reverse: refund, then release the seats.
 */
export const purchaseTicket = task({
  id: "purchase-ticket",
  retry: { maxAttempts: 1 },
  run: async (payload: PurchasePayload, { ctx }) => {
    const reservation = await callService<Reservation>("/reservations", { showId: payload.showId, seats: payload.seats });
    rollback(() => callService(`/reservations/${reservation.id}/release`), "release seats");
    logger.info("seats reserved", { reservationId: reservation.id, seats: payload.seats, total: reservation.total });

    const checkout = await events.waitForEvent<{ reservationId: string; cardToken: string }>({
      event: "checkout",
      filter: { reservationId: [reservation.id] },
      timeout: { minutes: 15 },
    });
    logger.info("checkout received", { eventId: checkout.id });

    const charge = await callService<{ id: string }>("/payments", { amount: reservation.total, cardToken: checkout.payload.cardToken, reference: ctx.runId });
    rollback(() => callService(`/payments/${charge.id}/refund`), "refund payment");

    const ticket = await callService<{ id: string }>("/tickets", { reservationId: reservation.id, paymentId: charge.id });
    await callService("/emails", { to: payload.email, subject: "Your tickets", ticketId: ticket.id });

    return { reservationId: reservation.id, paymentId: charge.id, ticketId: ticket.id, seats: payload.seats };
  },
});
