//! Durations as admins write them: `15m`, `8h`, `1h30m`, `2d`.

/// Seconds in `s`, or a message saying what would be valid.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || {
        format!("`{s}` is not a duration: write a number with a unit, such as 15m, 8h, 1h30m or 2d")
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        if ch == ' ' {
            continue;
        }
        let unit = match ch {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("8h"), Ok(28_800));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("72h"), Ok(259_200));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("1x").is_err());
    }
}
