// Small schemas the fleet spec's sections share: names, argv lists, schedules, bounded lists.
// Every list and string has a maximum, so a hostile or mistaken file cannot make us allocate
// without bound.

import { z } from "zod";

/** Longest free-text field (descriptions, zone names, label values). */
export const textCharactersMax = 256;
/** Longest path or argv element. */
export const pathCharactersMax = 4096;
/** Most arguments in one argv list. */
export const argvItemsMax = 256;
/** Most entries in a map of labels or environment variables. */
export const mapEntriesMax = 256;

/** A lowercase DNS label (RFC 1123): node ids and the fleet name, so they work as host names. */
export const dnsLabelSchema = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
  error:
    "expected a lowercase DNS label (a-z, 0-9 and '-', 1 to 63 characters, no '-' at either end)",
});

/** A snake_case identifier: service, role, capability, hook and data-type names. */
export const identifierSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, {
  error:
    "expected a lowercase name (a-z, 0-9, '_' and '-', starting with a letter, at most 63 characters)",
});

export const environmentVariableSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, {
  error:
    "expected an environment variable name (letters, digits and '_', not starting with a digit)",
});

export const textSchema = z.string().min(1).max(textCharactersMax);

export const pathSchema = z
  .string()
  .min(1)
  .max(pathCharactersMax)
  .regex(/^[^\0]*$/, { error: "expected a path without NUL characters" });

/** A relative path that stays inside the directory it is relative to. */
export const relativePathSchema = pathSchema.regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))/, {
  error: "expected a relative path without '..' segments",
});

export const argvSchema = z
  .array(z.string().min(1).max(pathCharactersMax))
  .min(1)
  .max(argvItemsMax)
  .describe(
    "Program and arguments, run directly (no shell), e.g. [node, server.mjs, --port, '8080'].",
  );

export const positiveIntegerSchema = z.int().positive();

/** An http:// or https:// URL (webhooks, S3 endpoints). */
export const httpUrlSchema = z.url({
  protocol: /^https?$/,
  error: "expected an http:// or https:// URL",
});

/** A list whose items must be unique; a duplicate is reported at its own index. */
export function uniqueListSchema<Item extends z.ZodType<string>>(
  item: Item,
  itemsMax: number,
  what: string,
) {
  return z
    .array(item)
    .max(itemsMax)
    .superRefine((items, context) => {
      const firstIndexByItem = new Map<string, number>();
      items.forEach((value, index) => {
        const firstIndex = firstIndexByItem.get(value);
        if (firstIndex === undefined) firstIndexByItem.set(value, index);
        else
          context.addIssue({
            code: "custom",
            path: [index],
            message: `expected each ${what} once`,
            params: { found: `${JSON.stringify(value)} again (first at index ${firstIndex})` },
          });
      });
    });
}

// Field ranges of a 5-field cron expression: minute, hour, day of month, month, day of week
// (0 and 7 are both Sunday).
const cronFieldRanges = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
] as const;

/** True for a 5-field cron expression of numbers, ranges, lists and steps, e.g. `0 3 * * 1-5`. */
export function isCronExpression(text: string): boolean {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== cronFieldRanges.length) return false;
  return fields.every((field, index) => {
    const [minimum, maximum] = cronFieldRanges[index] ?? [0, 0];
    return field.split(",").every((part) => {
      const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
      if (match === null) return false;
      const [, , first, last, step] = match;
      const inRange = (value: string | undefined) =>
        value === undefined || (Number(value) >= minimum && Number(value) <= maximum);
      const ordered = first === undefined || last === undefined || Number(first) <= Number(last);
      return inRange(first) && inRange(last) && ordered && (step === undefined || Number(step) > 0);
    });
  });
}

export const scheduleSchema = z
  .string()
  .max(textCharactersMax)
  .refine((text) => text === "weekly" || text === "monthly" || isCronExpression(text), {
    error: "expected weekly, monthly or a 5-field cron expression such as '0 3 * * 1'",
  });
