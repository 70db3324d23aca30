/**
 * Nomad writes CreateTime, ModifyTime and SubmitTime as Unix nanoseconds (about 1.7e18),
 * beyond what a JavaScript number holds exactly. Before parsing, such values are turned
 * into decimal strings. A key is matched only where it is structural: inside a JSON string
 * its quotes would be escaped, so `"CreateTime":` cannot occur there.
 */
const BIG_TIMES = /"(CreateTime|ModifyTime|SubmitTime)"(\s*):(\s*)(-?\d{16,})/g;

export function parseNomadJson(text: string): unknown {
  return JSON.parse(text.replace(BIG_TIMES, '"$1"$2:$3"$4"'));
}
