/** Longest `Date` value looked at: an IMF-fixdate is 29 characters. */
const MAX_DATE_LENGTH = 64;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MON = MONTHS.join('|');
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient accepts
const IMF = new RegExp(`^(${DAYS.join('|')}), (\\d{2}) (${MON}) (\\d{4}) ${TIME} GMT$`);
const RFC850 = new RegExp(`^(${LONG_DAYS.join('|')}), (\\d{2})-(${MON})-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^(${DAYS.join('|')}) (${MON}) ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/**
 * Parses an HTTP `Date` value (RFC 9110 §5.6.7) into ms since the epoch, strictly: the three
 * formats of the RFC only, every field in range, the weekday matching the date, at most 64
 * characters. Anything else (garbage, a local time, an offset other than GMT, a value
 * `Date.parse` would guess at) is `undefined`. Never throws. @internal
 */
export function parseHttpDate(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > MAX_DATE_LENGTH) return undefined;
  const s = value.trim();
  let weekday: number;
  let day: number;
  let month: number;
  let year: number;
  let time: [string, string, string];
  let m: RegExpExecArray | null;
  if ((m = IMF.exec(s))) {
    weekday = DAYS.indexOf(m[1]!);
    day = Number(m[2]);
    month = MONTHS.indexOf(m[3]!);
    year = Number(m[4]);
    time = [m[5]!, m[6]!, m[7]!];
  } else if ((m = RFC850.exec(s))) {
    weekday = LONG_DAYS.indexOf(m[1]!);
    day = Number(m[2]);
    month = MONTHS.indexOf(m[3]!);
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century
    const yy = Number(m[4]);
    const century = Math.floor(new Date().getUTCFullYear() / 100) * 100;
    year = century + yy > new Date().getUTCFullYear() + 50 ? century - 100 + yy : century + yy;
    time = [m[5]!, m[6]!, m[7]!];
  } else if ((m = ASCTIME.exec(s))) {
    weekday = DAYS.indexOf(m[1]!);
    month = MONTHS.indexOf(m[2]!);
    day = Number(m[3]!.trim());
    time = [m[4]!, m[5]!, m[6]!];
    year = Number(m[7]);
  } else {
    return undefined;
  }
  const [hh, mm, ss] = time.map(Number) as [number, number, number];
  if (hh > 23 || mm > 59 || ss > 60) return undefined; // 60: a leap second
  const ms = Date.UTC(year, month, day, hh, mm, Math.min(ss, 59));
  const d = new Date(ms);
  if (d.getUTCDate() !== day || d.getUTCMonth() !== month || d.getUTCDay() !== weekday)
    return undefined;
  return ms;
}
