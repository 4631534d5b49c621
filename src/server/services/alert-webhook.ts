// The optional alert webhook (`edgeward server --alert-webhook URL`): every alert and every
// finished failover is POSTed there as the same JSON object the event stream carries. A slow or
// dead receiver never holds up a failover: posts run on their own, bounded in number.

import type { Logger } from "../../ports/logger.ts";
import { requestJson } from "../../runtime/http-json.ts";

/** A post not answered within this is given up. */
export const webhookTimeoutMs = 5_000;
/** Posts in flight at once; beyond it new ones are dropped and counted. */
export const webhookPostsInFlightMax = 64;

export class AlertWebhook {
  readonly #url: URL;
  readonly #logger: Logger;
  #inFlight = 0;
  #dropped = 0;

  constructor(url: URL, logger: Logger) {
    this.#url = url;
    this.#logger = logger;
  }

  get dropped(): number {
    return this.#dropped;
  }

  post(body: object): void {
    if (this.#inFlight >= webhookPostsInFlightMax) {
      this.#dropped += 1;
      this.#logger.warn(
        { dropped: this.#dropped },
        "alert webhook is not keeping up; alert dropped",
      );
      return;
    }
    this.#inFlight += 1;
    requestJson("POST", this.#url, body, webhookTimeoutMs)
      .then((response) => {
        if (response.statusCode >= 300) {
          this.#logger.warn({ statusCode: response.statusCode }, "alert webhook refused an alert");
        }
      })
      .catch((error: unknown) =>
        this.#logger.warn({ err: (error as Error).message }, "alert webhook unreachable"),
      )
      .finally(() => {
        this.#inFlight -= 1;
      });
  }
}
