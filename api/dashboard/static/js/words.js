// What the morning view says, in plain words. Reviewed against ../shared/domain/science.md:
// never a diagnosis; say what the sensor cannot see; escalate on the red flags (shaking for
// minutes, one side only, with poor feeding or lethargy); what is normal at 1-2 months.

import { clock, duration, hoursMinutes, num, plural, times, unix } from "./format.js";

export const NOTE_KINDS = {
  feeding: "Feeding",
  fever: "Fever",
  medication: "Medicine",
  supplement: "Supplement",
  shaking_seen: "Shaking seen",
  stopped_when_held: "Stopped when held",
  woke: "Woke up",
  lights_out: "Lights out",
  other: "Other",
};

// what a parent does about a flag: four tiers, least to most pressing
export const TIERS = {
  watch: "Watch and note it",
  visit: "Mention it at the next visit",
  today: "Call the doctor today",
  urgent: "Urgent: get medical help now",
};

const URGENT_TODO = "Call your doctor or the out-of-hours service now. If shaking is happening now, or comes with " +
  "changes in breathing, colour, eye movements or responsiveness, call emergency services.";

const ACTIONS = {
  PLMI_ELEVATED: ["visit", "Keep the sensors on for more nights: one night says little (see the last 14 nights below). " +
    "Mention it at the next visit, with how your child sleeps and is in the day."],
  PROLONGED_TREMOR: ["today", "Call your doctor today. Say how long the shaking lasted, one leg or both, whether it " +
    "stopped when you held the leg or when your child woke, and how feeding has been. If it comes with changes in " +
    "breathing, colour, eye movements or responsiveness, get help straight away."],
  ASYMMETRIC_MOVEMENT: ["visit", "Check that both straps sit snugly tonight. If one leg moves much more again, mention " +
    "it at the next visit."],
  LOW_COVERAGE: ["watch", "Charge both sensors and check the straps before tonight."],
  NONWEAR: ["watch", "Check that the strap sits snugly. The figures leave out the time the sensor was off."],
  FRAGMENTED_SLEEP: ["watch", "Note feeding, fever, teething or illness in the journal. If sleep is broken most nights, " +
    "mention it at the next visit."],
};

const BY_SEVERITY = {
  info: ["watch", "Note anything you saw in the journal."],
  warning: ["visit", "Mention it at the next visit."],
  urgent: ["urgent", URGENT_TODO],
};

// (tier, what to do) for a report flag; an urgent flag is always urgent
export function action(flag) {
  if (flag.severity === "urgent") return ["urgent", URGENT_TODO];
  return ACTIONS[flag.code] ?? BY_SEVERITY[flag.severity] ?? BY_SEVERITY.info;
}

// the night in one sentence
export function nightSentence(report, name, zone) {
  const sleep = report.sleep;
  const parts = [];
  if (sleep.total_sleep_min > 0) {
    const settling = settlingPart(report.settling);
    if (settling) parts.push(settling);
    parts.push(`slept ${hoursMinutes(sleep.total_sleep_min)} between ${clock(unix(sleep.onset), zone)} and ` +
      `${clock(unix(sleep.offset), zone)}`);
    parts.push(sleep.awakenings === 0 ? "did not wake" : `woke ${times(sleep.awakenings)}`);
    parts.push(`had ${num(report.plm.index)} repeating leg movements per hour of sleep`);
  } else {
    const recorded = (unix(report.recording.end) - unix(report.recording.start)) / 60;
    parts.push(`did not seem to sleep in the ${hoursMinutes(recorded)} recorded`);
  }
  const spells = report.tremor_episodes;
  if (spells.length === 0) {
    parts.push("had no spells of shaking");
  } else {
    const longest = Math.max(...spells.map((s) => unix(s.end) - unix(s.start)));
    parts.push(`had ${plural(spells.length, "spell")} of shaking (the longest ${duration(longest)})`);
  }
  let last = parts.pop();
  if (parts.at(-1).startsWith("had ")) last = last.replace(/^had /, ""); // "had X and Y"
  return `${name} ${parts.join(", ")} and ${last}.`;
}

// how long falling asleep took, and the rhythmic kicking in it (reports of algorithm 1.2.0 on)
function settlingPart(settling) {
  const latency = settling?.sleep_onset_latency_min;
  if (latency == null || latency < 1) return null;
  const from = settling.latency_from === "lights_out" ? "lights out" : "the sensors went on";
  const kicking = settling.first?.kicking_min ?? 0;
  return `fell asleep ${hoursMinutes(latency)} after ${from}` + (kicking >= 1
    ? ` (the legs kicked in a regular rhythm for about ${hoursMinutes(kicking)} of it)` : "");
}

export const LIMITS_SHORT = "This is not a diagnosis. The sensors feel movement at the ankles only: they cannot see " +
  "breathing, colour, eye movements or brain activity, and cannot tell whether shaking stops when the leg is held.";

export const LIMITS = [
  "Leg movements are estimated from movement, not measured from the muscles (EMG) as a sleep lab does, so the " +
    "counts are a guide.",
  "Sleep and wake are guessed from stillness: a quiet, awake child can look asleep.",
  "Seizures can only be told apart from harmless shaking by a doctor, often with a brain-wave test (EEG).",
  "It does not know about feeding, fever, medicines or how your child is in the day: add these as notes.",
  "Whether shaking stopped when you held the leg, or when your child woke, matters to a doctor: add a note " +
    "(\"Stopped when held\").",
  "For babies under one year there are no normal values for repeating leg movements.",
];

export const RED_FLAGS = "Whatever this page says, call a doctor if shaking lasts minutes, is on one side only, or comes " +
  "with poor feeding or unusual sleepiness or floppiness. Call emergency services if shaking comes with changes in " +
  "breathing or colour, or your child is hard to wake.";

export const YOUNG_BABY_MONTHS = 6; // startles and sleep jerks usually fade by 3-6 months

export const NORMAL_YOUNG = [
  "Startles: the arms fling out and pull back in after a noise or a jolt.",
  "Brief jerks of the arms or legs in sleep, sometimes in clusters, that stop when the baby wakes.",
  "Brief jitteriness (fast, fine trembling) that stops when you gently hold the arm or leg.",
];

export function jerksLine(report) {
  return `This night: ${plural(report.brief_jerks, "brief jerk or startle", "brief jerks or startles")}.`;
}

// a device alert of the live stream in the child's clock time (the stream's own message gives
// UTC); `battery` is the sensor's last reported charge
export function deviceAlert(alert, since, battery) {
  const sensor = `The ${alert.side} sensor`;
  if (alert.alert === "lost") return `${sensor} has not been heard from since ${since}: check it is near the gateway and switched on.`;
  if (alert.alert === "off_ankle") return `${sensor} seems to be off the ankle since ${since}: check the strap.`;
  if (alert.alert === "low_battery") {
    return `${sensor}'s battery is low${battery === null ? "" : ` (${Math.round(battery)} %)`}: charge it before tonight.`;
  }
  return alert.message;
}
