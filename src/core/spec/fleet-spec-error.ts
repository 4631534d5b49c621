// The one error a fleet spec produces: every problem found, each with the place in the file
// and the field it concerns, so the user can fix them all in one go.

/** One problem in a fleet spec. Line and column are 1-based. */
export interface FleetSpecIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The field concerned, e.g. `nodes[2].tier`; empty for the file as a whole. */
  readonly path: string;
  /** What was expected and what was found. */
  readonly message: string;
}

/** Most issues one error lists; the rest are counted, since the first ones are what matters. */
export const fleetSpecIssuesMax = 50;

function formatFleetSpecIssue(issue: FleetSpecIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}`;
  return issue.path === ""
    ? `${where}: ${issue.message}`
    : `${where}: ${issue.path}: ${issue.message}`;
}

/** A fleet spec that cannot be used: its message has one `file:line:column: path: …` line per issue. */
export class FleetSpecError extends Error {
  override readonly name = "FleetSpecError";
  readonly issues: readonly FleetSpecIssue[];

  constructor(issues: readonly FleetSpecIssue[]) {
    const shown = issues.slice(0, fleetSpecIssuesMax);
    const lines = shown.map(formatFleetSpecIssue);
    if (issues.length > shown.length) lines.push(`… and ${issues.length - shown.length} more`);
    super(lines.join("\n"));
    this.issues = shown;
  }
}
