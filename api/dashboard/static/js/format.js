// Times in the child's time zone, durations and numbers in plain words.

export const unix = (iso) => Date.parse(iso) / 1000;

const formats = new Map();
function fmt(zone, options) {
  const key = zone + JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: zone, ...options }));
  return formats.get(key);
}

export function clock(t, zone) {
  return fmt(zone, { hour: "2-digit", minute: "2-digit" }).format(t * 1000);
}

export function clockSeconds(t, zone) {
  return fmt(zone, { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(t * 1000);
}

export function dateLong(isoDate) {
  // a local evening date "YYYY-MM-DD": a calendar day, not an instant
  return fmt("UTC", { weekday: "long", day: "numeric", month: "long" }).format(Date.parse(`${isoDate}T12:00:00Z`));
}

export function dateShort(isoDate) {
  return fmt("UTC", { day: "numeric", month: "short" }).format(Date.parse(`${isoDate}T12:00:00Z`));
}

export function dayTime(t, zone) {
  return fmt(zone, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(t * 1000);
}

// the hour of day in `zone` (0-23, with fractions) of Unix time t
export function hourOfDay(t, zone) {
  const parts = fmt(zone, { hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23" }).formatToParts(t * 1000);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return get("hour") + get("minute") / 60 + get("second") / 3600;
}

export function hoursMinutes(minutes) {
  const m = Math.round(minutes);
  const h = Math.floor(m / 60);
  if (h === 0) return `${m} min`;
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}

export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 90) return `${s} s`;
  if (s < 600) return s % 60 === 0 ? `${s / 60} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
  return hoursMinutes(seconds / 60);
}

export function num(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

export function pct(share) {
  return share === null || share === undefined ? "–" : `${Math.round(share * 100)} %`;
}

export function times(n) {
  return n === 1 ? "once" : n === 2 ? "twice" : `${n} times`;
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function ageMonths(birthDate, atIsoDate) {
  if (!birthDate) return null;
  const [by, bm, bd] = birthDate.split("-").map(Number);
  const [y, m, d] = atIsoDate.split("-").map(Number);
  return (y - by) * 12 + (m - bm) + (d - bd) / 30.44;
}
