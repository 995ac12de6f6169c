/** Longest `Date` value looked at: an IMF-fixdate is 29 characters. */
const MAX_DATE_LENGTH = 64;
const MONTHS = 'JanFebMarAprMayJunJulAugSepOctNovDec';
const DAYS = 'SunMonTueWedThuFriSat';
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient accepts
const IMF = /^(\w{3}), (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/;
const RFC850 = /^(\w{6,9}), (\d\d)-(\w{3})-(\d\d) (\d\d):(\d\d):(\d\d) GMT$/;
const ASCTIME = /^(\w{3}) (\w{3}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})$/;

const nameIndex = (list: string, name: string): number => {
  const i = list.indexOf(name);
  return name.length === 3 && i % 3 === 0 ? i / 3 : -1;
};

/**
 * Parses an HTTP `Date` value (RFC 9110 §5.6.7) into ms since the epoch, strictly: the three
 * formats of the RFC only, every field in range, the weekday matching the date, at most 64
 * characters. Anything else (garbage, a local time, an offset other than GMT, a value
 * `Date.parse` would guess at) is `undefined`. Never throws. @internal
 */
export function parseHttpDate(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > MAX_DATE_LENGTH) return undefined;
  const s = value.trim();
  // [weekday, day, month, year, hh, mm, ss]
  let f: [number, number, number, number, string, string, string];
  let m: RegExpExecArray | null;
  if ((m = IMF.exec(s))) {
    f = [nameIndex(DAYS, m[1]!), +m[2]!, nameIndex(MONTHS, m[3]!), +m[4]!, m[5]!, m[6]!, m[7]!];
  } else if ((m = RFC850.exec(s))) {
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century
    const now = new Date().getUTCFullYear();
    let year = Math.floor(now / 100) * 100 + +m[4]!;
    if (year > now + 50) year -= 100;
    f = [LONG_DAYS.indexOf(m[1]!), +m[2]!, nameIndex(MONTHS, m[3]!), year, m[5]!, m[6]!, m[7]!];
  } else if ((m = ASCTIME.exec(s))) {
    f = [nameIndex(DAYS, m[1]!), +m[3]!, nameIndex(MONTHS, m[2]!), +m[7]!, m[4]!, m[5]!, m[6]!];
  } else {
    return undefined;
  }
  const [weekday, day, month, year, hh, mm, ss] = f;
  if (+hh > 23 || +mm > 59 || +ss > 60) return undefined; // 60: a leap second
  const ms = Date.UTC(year, month, day, +hh, +mm, Math.min(+ss, 59));
  const d = new Date(ms);
  if (month < 0 || d.getUTCDate() !== day || d.getUTCMonth() !== month || d.getUTCDay() !== weekday)
    return undefined;
  return ms;
}
