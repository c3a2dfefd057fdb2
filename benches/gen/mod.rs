//! A deterministic synthetic ticket export (`docs/offline-format.md`) for
//! benchmarks: `examples/gen_export.rs` writes it to stdout, `benches/bill.rs`
//! generates it in memory.
//!
//! The tickets are spread over every customer of `mappings/examples/*.yaml`
//! and use only raw values those mappings understand: priorities `1 low` …
//! `4 critical`, states `new`, `open`, `pending customer`, `closed`, the
//! categories each contract's rules list (some `null`), authorized and
//! unauthorized requesters, the `customer-config` tag now and then. Tickets are
//! created from 2026-01 to 2026-10, so billing 2026-10 replays earlier months.
//! Timestamps carry the customer's local offset (DST included).
//!
//! The same seed and sizes always give the same bytes: the random numbers come
//! from a hand-written splitmix64, not from a crate whose sequence may change.

use std::io::{self, Write};

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Number of tickets.
    pub tickets: u64,
    /// Number of work entries, spread over the tickets (exactly this many).
    pub entries: u64,
    /// Seed of the random sequence.
    pub seed: u64,
}

/// splitmix64: tiny, fast and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c908)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The wall clocks of the example contracts.
#[derive(Clone, Copy)]
enum Zone {
    /// Europe/Riga: +02:00, +03:00 in summer.
    Riga,
    /// Europe/Warsaw, Stockholm, Copenhagen: +01:00, +02:00 in summer.
    Central,
}

impl Zone {
    fn standard_offset(self) -> i64 {
        match self {
            Zone::Riga => 2 * 3600,
            Zone::Central => 3600,
        }
    }

    /// The UTC offset at `utc` (EU rule: summer time from the last Sunday of
    /// March to the last Sunday of October, 01:00 UTC).
    fn offset_at(self, utc: i64) -> i64 {
        let (year, _, _) = civil_from_days(utc.div_euclid(86_400));
        let last_sunday = |month: u32| {
            let d31 = days_from_civil(year, month, 31);
            let weekday = (d31 + 4).rem_euclid(7); // 0 = Sunday; 1970-01-01 was a Thursday
            (d31 - weekday) * 86_400 + 3600
        };
        let summer = utc >= last_sunday(3) && utc < last_sunday(10);
        self.standard_offset() + if summer { 3600 } else { 0 }
    }
}

struct Customer {
    key: &'static str,
    zone: Zone,
    /// Relative share of the tickets.
    weight: u64,
    /// Requesters the contract accepts (or anyone's addresses).
    requesters: &'static [&'static str],
    /// Addresses the contract does not accept; empty for `requesters: anyone`.
    unauthorized: &'static [&'static str],
    categories: &'static [&'static str],
    agents: &'static [&'static str],
}

const LV_IT_CATEGORIES: &[&str] = &[
    "server",
    "project",
    "complex",
    "config-change",
    "network",
    "hardware",
    "printer",
    "email",
    "backup",
];
const MONEO_CATEGORIES: &[&str] = &[
    "bug",
    "account-admin",
    "suggestion",
    "feature-intro",
    "quick-help",
    "quick-help",
    "settings-change",
    "customer-error",
    "consultation",
    "meeting",
    "wish-evaluation",
    "wish-evaluation",
    "programming",
];
/// Contracts without rules bill every category; these are only for realism.
const GENERIC_CATEGORIES: &[&str] = &[
    "incident",
    "service-request",
    "change",
    "hardware",
    "network",
    "access",
];
const LV_AGENTS: &[&str] = &["juris", "anna", "martins", "liga"];
const PL_AGENTS: &[&str] = &["piotr", "kasia", "tomasz"];
const SE_AGENTS: &[&str] = &["lars", "karin", "johan", "elin"];
const DK_AGENTS: &[&str] = &["mette", "soren", "freja"];

const CUSTOMERS: &[Customer] = &[
    Customer {
        key: "riga-bakery",
        zone: Zone::Riga,
        weight: 10,
        requesters: &["ilze@riga-bakery.example", "Ilze@Riga-Bakery.example"],
        unauthorized: &["janis@riga-bakery.example", "shop@riga-bakery.example"],
        categories: LV_IT_CATEGORIES,
        agents: LV_AGENTS,
    },
    Customer {
        key: "daugava-logistics",
        zone: Zone::Riga,
        weight: 10,
        requesters: &["ops@daugava.example", "cfo@daugava.example"],
        unauthorized: &["driver@daugava.example"],
        categories: LV_IT_CATEGORIES,
        agents: LV_AGENTS,
    },
    Customer {
        key: "jurmala-hotel",
        zone: Zone::Riga,
        weight: 8,
        requesters: &[
            "reception@jurmala-hotel.example",
            "it@jurmala-hotel.example",
        ],
        unauthorized: &[],
        categories: LV_IT_CATEGORIES,
        agents: LV_AGENTS,
    },
    Customer {
        key: "baltic-retail",
        zone: Zone::Riga,
        weight: 10,
        requesters: &["it@baltic-retail.example", "store7@baltic-retail.example"],
        unauthorized: &[],
        categories: MONEO_CATEGORIES,
        agents: LV_AGENTS,
    },
    Customer {
        key: "vidzeme-foods",
        zone: Zone::Riga,
        weight: 8,
        requesters: &["office@vidzeme-foods.example", "cto@vidzeme-foods.example"],
        unauthorized: &[],
        categories: MONEO_CATEGORIES,
        agents: LV_AGENTS,
    },
    Customer {
        key: "poznan-clinic",
        zone: Zone::Central,
        weight: 10,
        requesters: &[
            "admin@poznan-clinic.example",
            "reception@poznan-clinic.example",
        ],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: PL_AGENTS,
    },
    Customer {
        key: "alert-co",
        zone: Zone::Central,
        weight: 10,
        requesters: &["it@alert-co.example", "ceo@alert-co.example"],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: SE_AGENTS,
    },
    Customer {
        key: "attend-co",
        zone: Zone::Central,
        weight: 8,
        requesters: &["office@attend-co.example"],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: SE_AGENTS,
    },
    Customer {
        key: "access-co",
        zone: Zone::Central,
        weight: 6,
        requesters: &["info@access-co.example"],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: SE_AGENTS,
    },
    Customer {
        key: "walkin-co",
        zone: Zone::Central,
        weight: 4,
        requesters: &["owner@walkin-co.example"],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: SE_AGENTS,
    },
    Customer {
        key: "nordhavn-arkitekter",
        zone: Zone::Central,
        weight: 8,
        requesters: &["kontor@nordhavn-arkitekter.example"],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: DK_AGENTS,
    },
    Customer {
        key: "valby-tandlaege",
        zone: Zone::Central,
        weight: 8,
        requesters: &["klinik@valby-tandlaege.example"],
        unauthorized: &[],
        categories: GENERIC_CATEGORIES,
        agents: DK_AGENTS,
    },
];

const TITLES: &[&str] = &[
    "Printer offline",
    "Cash register cannot reach the network",
    "New laptop for the shop",
    "Outlook keeps asking for the password",
    "VPN drops every few minutes",
    "Backup job failed",
    "Server disk almost full",
    "Add a user to the shared mailbox",
    "Wi-Fi slow in the meeting room",
    "Invoice export shows wrong totals",
    "Please explain the new report",
    "Migrate the file share",
    "Scanner sends empty pages",
    "Phone system: forward calls after 18:00",
    "Install accounting update",
    "Password reset",
];
const NOTES: &[&str] = &[
    "Reinstalled driver",
    "Checked logs",
    "Called the user back",
    "Replaced cable",
    "Updated firmware",
    "Restarted the service",
    "Explained the settings",
    "Site visit",
    "Configured the mailbox",
    "Waiting for vendor",
];
const PRIORITIES: &[&str] = &["1 low", "2 normal", "3 high", "4 critical"];
/// Percent weights of `PRIORITIES`.
const PRIORITY_WEIGHTS: [u64; 4] = [20, 50, 22, 8];

/// 2026-01-01T00:00:00Z.
const YEAR_START: i64 = 1_767_225_600;
/// Tickets are created on days 0..304 of 2026 (January to October).
const CREATION_DAYS: i64 = 304;
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Writes the export for `cfg` to `w`.
pub fn write_export<W: Write>(w: &mut W, cfg: &Config) -> io::Result<()> {
    let mut rng = Rng::new(cfg.seed);
    let total_weight: u64 = CUSTOMERS.iter().map(|c| c.weight).sum();
    let mut out = Json(Vec::with_capacity(1 << 17));
    out.raw("{\"source\":\"synthetic\",\"tickets\":[");
    let mut entries_left = cfg.entries;
    for i in 0..cfg.tickets {
        let tickets_left = cfg.tickets - i;
        let work_count = if tickets_left == 1 {
            entries_left
        } else {
            let avg = entries_left.div_ceil(tickets_left);
            // A few tickets carry a lot of work; most carry around the average.
            let spread = if rng.percent(2) { 8 * avg } else { 2 * avg };
            rng.below(spread + 1).min(entries_left)
        };
        entries_left -= work_count;
        if i > 0 {
            out.raw(",");
        }
        out.raw("\n");
        let mut pick = rng.below(total_weight);
        let customer = CUSTOMERS
            .iter()
            .find(|c| {
                if pick < c.weight {
                    true
                } else {
                    pick -= c.weight;
                    false
                }
            })
            .unwrap_or(&CUSTOMERS[0]);
        ticket(&mut out, &mut rng, customer, i + 1, work_count);
        if out.0.len() >= 1 << 16 {
            w.write_all(&out.0)?;
            out.0.clear();
        }
    }
    out.raw("\n]}\n");
    w.write_all(&out.0)?;
    w.flush()
}

fn ticket(out: &mut Json, rng: &mut Rng, c: &Customer, number: u64, work_count: u64) {
    // Created mostly in office hours, local time (approximately: standard offset).
    let day = rng.range(0, CREATION_DAYS);
    let time_of_day = if rng.percent(75) {
        rng.range(8 * HOUR, 18 * HOUR)
    } else {
        rng.range(0, DAY)
    };
    let created = YEAR_START + day * DAY + time_of_day - c.zone.standard_offset();
    let first_response = rng.percent(95).then(|| {
        created
            + match rng.below(10) {
                0..=5 => rng.range(5 * MIN, 2 * HOUR),
                6..=8 => rng.range(2 * HOUR, DAY),
                _ => rng.range(DAY, 4 * DAY),
            }
    });
    let start = first_response.unwrap_or(created);
    let resolve_percent = if day < 273 { 90 } else { 55 }; // October is still busy
    let resolved = (first_response.is_some() && rng.percent(resolve_percent)
        || first_response.is_none() && rng.percent(3))
    .then(|| {
        start
            + match rng.below(10) {
                0..=4 => rng.range(30 * MIN, 8 * HOUR),
                5..=8 => rng.range(8 * HOUR, 3 * DAY),
                _ => rng.range(3 * DAY, 12 * DAY),
            }
    });

    // State history: new, open at the first response, pauses, closed (maybe reopened).
    let mut states: Vec<(i64, &str)> = vec![(created, "new")];
    if let Some(fr) = first_response {
        states.push((fr, "open"));
    }
    let window_end = resolved.unwrap_or(start + 10 * DAY);
    let pauses = match rng.below(10) {
        0..=5 => 0,
        6..=8 => 1,
        _ => 2,
    };
    if pauses > 0 && window_end - start > 4 * MIN {
        let mut at: Vec<i64> = (0..2 * pauses)
            .map(|_| rng.range(start + MIN, window_end - MIN))
            .collect();
        at.sort_unstable();
        for pair in at.chunks(2) {
            states.push((pair[0], "pending customer"));
            states.push((pair[1], "open"));
        }
    }
    let mut resolved_at = resolved;
    if let Some(r) = resolved {
        states.push((r, "closed"));
        if rng.percent(3) {
            let reopened = r + rng.range(HOUR, 3 * DAY);
            let closed_again = reopened + rng.range(HOUR, 2 * DAY);
            states.push((reopened, "open"));
            states.push((closed_again, "closed"));
            resolved_at = Some(closed_again);
        }
    }

    let id = TicketNumber(number);
    let zone = c.zone;
    out.raw("{\"id\":");
    out.ticket_id(id);
    out.raw(",\"customer\":");
    out.string(c.key);
    out.raw(",\"requester\":");
    if rng.percent(1) {
        out.raw("null");
    } else if !c.unauthorized.is_empty() && rng.percent(12) {
        out.string(rng.pick(c.unauthorized));
    } else {
        out.string(rng.pick(c.requesters));
    }
    out.raw(",\"title\":");
    out.string(rng.pick(TITLES));
    out.raw(",\"priority\":");
    if rng.percent(1) {
        out.raw("null");
    } else {
        let mut p = rng.below(100);
        let idx = PRIORITY_WEIGHTS
            .iter()
            .position(|&w| {
                if p < w {
                    true
                } else {
                    p -= w;
                    false
                }
            })
            .unwrap_or(1);
        out.string(PRIORITIES[idx]);
    }
    out.raw(",\"category\":");
    if rng.percent(4) {
        out.raw("null");
    } else {
        out.string(rng.pick(c.categories));
    }
    out.raw(",\"tags\":[");
    let mut tags = 0;
    for (tag, percent) in [("customer-config", 6), ("remote", 10), ("force-majeure", 1)] {
        if rng.percent(percent) {
            if tags > 0 {
                out.raw(",");
            }
            out.string(tag);
            tags += 1;
        }
    }
    out.raw("],\"fields\":{");
    if rng.percent(5) {
        out.raw("\"asset\":\"PC-");
        out.uint(rng.range(100, 10_000) as u64);
        out.raw("\",\"seats\":");
        out.uint(rng.range(1, 50) as u64);
    }
    out.raw("},\"created_at\":");
    out.instant(created, zone);
    out.raw(",\"first_response_at\":");
    out.opt_instant(first_response, zone);
    out.raw(",\"resolved_at\":");
    out.opt_instant(resolved_at, zone);
    out.raw(",\"states\":[");
    for (n, (at, state)) in states.iter().enumerate() {
        if n > 0 {
            out.raw(",");
        }
        out.raw("{\"at\":");
        out.instant(*at, zone);
        out.raw(",\"state\":");
        out.string(state);
        out.raw("}");
    }
    out.raw("],\"work\":[");

    // Work between the first response (or creation) and the resolution (or ten days on).
    let work_end = resolved_at.unwrap_or(start + 10 * DAY).max(start + HOUR);
    let mut times: Vec<i64> = (0..work_count)
        .map(|_| rng.range(start, work_end))
        .collect();
    times.sort_unstable();
    for (n, at) in times.into_iter().enumerate() {
        if n > 0 {
            out.raw(",");
        }
        out.raw("\n{\"id\":");
        out.work_id(id, n as u64 + 1);
        out.raw(",\"at\":");
        out.instant(at, zone);
        out.raw(",\"minutes\":");
        minutes(out, rng);
        out.raw(",\"agent\":");
        if rng.percent(2) {
            out.raw("null");
        } else {
            out.string(rng.pick(c.agents));
        }
        out.raw(",\"kind\":");
        out.string(match rng.below(20) {
            0..=11 => "remote",
            12..=16 => "phone",
            _ => "onsite",
        });
        if rng.percent(90) {
            out.raw(",\"note\":");
            out.string(rng.pick(NOTES));
        }
        out.raw("}");
    }
    out.raw("]}");
}

/// Mostly whole minutes, some fractions such as 37.5, a few zeros.
fn minutes(out: &mut Json, rng: &mut Rng) {
    let whole = match rng.below(100) {
        0 => 0,
        1..=59 => rng.range(5, 60),
        60..=89 => rng.range(60, 180),
        _ => rng.range(180, 480),
    } as u64;
    out.uint(whole);
    if whole > 0 && rng.percent(15) {
        out.raw(rng.pick(&[".5", ".25", ".75"]));
    }
}

#[derive(Clone, Copy)]
struct TicketNumber(u64);

/// A JSON text under construction. Only what the export needs, no allocation per value.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn string(&mut self, s: &str) {
        self.0.push(b'"');
        for &b in s.as_bytes() {
            match b {
                b'"' => self.0.extend_from_slice(b"\\\""),
                b'\\' => self.0.extend_from_slice(b"\\\\"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.0.extend_from_slice(b"\\u00");
                    self.0.push(HEX[usize::from(b >> 4)]);
                    self.0.push(HEX[usize::from(b & 0xf)]);
                }
                _ => self.0.push(b),
            }
        }
        self.0.push(b'"');
    }

    fn uint(&mut self, mut n: u64) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&buf[i..]);
    }

    /// `n` zero-padded to `width` digits.
    fn padded(&mut self, n: u64, width: usize) {
        let mut buf = [b'0'; 20];
        let mut i = buf.len();
        let mut n = n;
        while n > 0 {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let start = buf.len() - width.max(buf.len() - i);
        self.0.extend_from_slice(&buf[start..]);
    }

    fn ticket_id(&mut self, id: TicketNumber) {
        self.raw("\"T-");
        self.padded(id.0, 6);
        self.raw("\"");
    }

    fn work_id(&mut self, id: TicketNumber, n: u64) {
        self.raw("\"T-");
        self.padded(id.0, 6);
        self.raw("-W");
        self.uint(n);
        self.raw("\"");
    }

    /// RFC 3339 with the zone's offset, e.g. `"2026-10-01T08:30:00+03:00"`.
    fn instant(&mut self, utc: i64, zone: Zone) {
        let offset = zone.offset_at(utc);
        let local = utc + offset;
        let (y, m, d) = civil_from_days(local.div_euclid(DAY));
        let secs = local.rem_euclid(DAY);
        self.raw("\"");
        self.padded(y as u64, 4);
        self.raw("-");
        self.padded(u64::from(m), 2);
        self.raw("-");
        self.padded(u64::from(d), 2);
        self.raw("T");
        self.padded((secs / HOUR) as u64, 2);
        self.raw(":");
        self.padded((secs % HOUR / MIN) as u64, 2);
        self.raw(":");
        self.padded((secs % MIN) as u64, 2);
        self.raw(if offset < 0 { "-" } else { "+" });
        self.padded((offset.abs() / HOUR) as u64, 2);
        self.raw(":");
        self.padded((offset.abs() % HOUR / MIN) as u64, 2);
        self.raw("\"");
    }

    fn opt_instant(&mut self, utc: Option<i64>, zone: Zone) {
        match utc {
            Some(t) => self.instant(t, zone),
            None => self.raw("null"),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
