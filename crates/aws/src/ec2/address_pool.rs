//! A subnet's used private IPv4 addresses, kept as sorted, merged ranges.
//!
//! Addresses are handed out lowest first, so the used set of a subnet is a few runs however many
//! interfaces it serves: storing runs keeps the subnet record (rewritten on every allocation) a few
//! bytes instead of one string per address, and an allocation costs the number of runs, not the
//! number of addresses. A thousand-node nodegroup was quadratic with the per-address list.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

/// The record field holding the runs: `[[first, last], …]` as `u32` addresses, inclusive.
const RANGES_FIELD: &str = "_usedRanges";
/// The per-address list records written before the runs (still read, rewritten as runs).
const LEGACY_FIELD: &str = "_used";

/// Used addresses as disjoint, non-adjacent, ascending inclusive runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AddressPool {
    runs: Vec<(u32, u32)>,
}

impl AddressPool {
    /// The pool recorded on a subnet (either form); an empty one when the record has none.
    pub(crate) fn load(subnet: &Value) -> Self {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for run in subnet[RANGES_FIELD].as_array().into_iter().flatten() {
            let bound = |i: usize| run[i].as_u64().and_then(|n| u32::try_from(n).ok());
            if let (Some(a), Some(b)) = (bound(0), bound(1))
                && a <= b
            {
                runs.push((a, b));
            }
        }
        for ip in subnet[LEGACY_FIELD]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str()?.parse::<Ipv4Addr>().ok())
        {
            runs.push((u32::from(ip), u32::from(ip)));
        }
        // Sorted, then overlapping or touching runs merged.
        runs.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            match merged.last_mut() {
                Some(last) if u64::from(a) <= u64::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Self { runs: merged }
    }

    /// Writes the runs back (dropping the legacy list) with the count of addresses left in
    /// `usable` (the subnet's size less AWS's five reserved addresses).
    pub(crate) fn store(&self, subnet: &mut Value, usable: i64) {
        if let Some(obj) = subnet.as_object_mut() {
            obj.remove(LEGACY_FIELD);
        }
        subnet["AvailableIpAddressCount"] = json!(usable - self.len() as i64);
        subnet[RANGES_FIELD] = Value::Array(self.runs.iter().map(|(a, b)| json!([a, b])).collect());
    }

    /// How many addresses are in use.
    pub(crate) fn len(&self) -> u64 {
        self.runs
            .iter()
            .map(|(a, b)| u64::from(*b) - u64::from(*a) + 1)
            .sum()
    }

    /// The index of the first run ending at or after `n`.
    fn run_at_or_after(&self, n: u32) -> usize {
        self.runs.partition_point(|&(_, end)| end < n)
    }

    #[cfg(test)]
    fn contains(&self, n: u32) -> bool {
        let i = self.run_at_or_after(n);
        i < self.runs.len() && self.runs[i].0 <= n
    }

    /// Marks `n` used; false when it already was.
    pub(crate) fn insert(&mut self, n: u32) -> bool {
        let i = self.run_at_or_after(n);
        if i < self.runs.len() && self.runs[i].0 <= n {
            return false;
        }
        let joins_left = i > 0 && self.runs[i - 1].1.checked_add(1) == Some(n);
        let joins_right = i < self.runs.len() && n.checked_add(1) == Some(self.runs[i].0);
        match (joins_left, joins_right) {
            (true, true) => {
                self.runs[i - 1].1 = self.runs[i].1;
                self.runs.remove(i);
            }
            (true, false) => self.runs[i - 1].1 = n,
            (false, true) => self.runs[i].0 = n,
            (false, false) => self.runs.insert(i, (n, n)),
        }
        true
    }

    /// Frees `n`; false when it was not in use.
    pub(crate) fn remove(&mut self, n: u32) -> bool {
        let i = self.run_at_or_after(n);
        if i == self.runs.len() || self.runs[i].0 > n {
            return false;
        }
        let (start, end) = self.runs[i];
        if start == end {
            self.runs.remove(i);
        } else if n == start {
            self.runs[i].0 = n + 1;
        } else if n == end {
            self.runs[i].1 = n - 1;
        } else {
            self.runs[i] = (start, n - 1);
            self.runs.insert(i + 1, (n + 1, end));
        }
        true
    }

    /// The `count` lowest free addresses in `first..=last`, marked used; `None` (and nothing
    /// marked) when fewer are free.
    pub(crate) fn take_lowest(&mut self, count: usize, first: u32, last: u32) -> Option<Vec<u32>> {
        let mut taken = Vec::with_capacity(count);
        let mut cursor = u64::from(first);
        let mut i = self.run_at_or_after(first);
        while taken.len() < count {
            if cursor > u64::from(last) {
                return None;
            }
            // The gap from the cursor to the next run (or the end of the range).
            let gap_end = match self.runs.get(i) {
                Some(&(start, end)) if u64::from(start) <= cursor => {
                    cursor = u64::from(end) + 1;
                    i += 1;
                    continue;
                }
                Some(&(start, _)) => u64::from(start).min(u64::from(last) + 1),
                None => u64::from(last) + 1,
            };
            let want = (count - taken.len()) as u64;
            let upto = gap_end.min(cursor + want);
            taken.extend((cursor..upto).map(|n| n as u32));
            cursor = upto;
        }
        for &n in &taken {
            self.insert(n);
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(runs: &[(u32, u32)]) -> AddressPool {
        AddressPool {
            runs: runs.to_vec(),
        }
    }

    #[test]
    fn inserts_merge_with_their_neighbours() {
        let mut p = AddressPool::default();
        for n in [5, 7, 6, 1, 3, 2] {
            assert!(p.insert(n));
        }
        assert_eq!(p, pool(&[(1, 3), (5, 7)]));
        assert!(!p.insert(6), "already used");
        assert!(p.insert(4));
        assert_eq!(p, pool(&[(1, 7)]));
        assert_eq!(p.len(), 7);
        assert!(p.insert(u32::MAX) && p.insert(u32::MAX - 1));
        assert_eq!(p, pool(&[(1, 7), (u32::MAX - 1, u32::MAX)]));
    }

    #[test]
    fn removes_trim_or_split_runs() {
        let mut p = pool(&[(1, 7)]);
        assert!(p.remove(4));
        assert_eq!(p, pool(&[(1, 3), (5, 7)]));
        assert!(p.remove(1) && p.remove(7));
        assert_eq!(p, pool(&[(2, 3), (5, 6)]));
        assert!(!p.remove(4), "not used");
        assert!(p.remove(2) && p.remove(3));
        assert_eq!(p, pool(&[(5, 6)]));
        assert!(!p.contains(4) && p.contains(5) && p.contains(6) && !p.contains(7));
    }

    #[test]
    fn takes_the_lowest_gaps_first_or_nothing() {
        let mut p = pool(&[(10, 12), (14, 14), (20, 30)]);
        assert_eq!(p.take_lowest(4, 10, 40), Some(vec![13, 15, 16, 17]));
        assert_eq!(p, pool(&[(10, 17), (20, 30)]));
        let before = p.clone();
        assert_eq!(p.take_lowest(13, 10, 40), None, "only 12 are free");
        assert_eq!(p, before, "a refused allocation marks nothing");
        assert_eq!(
            p.take_lowest(12, 10, 40),
            Some(vec![18, 19, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40])
        );
        assert_eq!(p, pool(&[(10, 40)]));
        assert_eq!(p.take_lowest(0, 10, 40), Some(vec![]));
    }

    #[test]
    fn reads_both_record_forms_and_writes_runs() {
        let mut subnet = json!({"_used": ["10.0.0.5", "10.0.0.4", "bogus"],
                                "_usedRanges": [[167772166, 167772170]]});
        let p = AddressPool::load(&subnet);
        assert_eq!(p, pool(&[(167772164, 167772170)]));
        p.store(&mut subnet, 251);
        assert_eq!(subnet["AvailableIpAddressCount"], 244);
        assert_eq!(subnet["_usedRanges"], json!([[167772164, 167772170]]));
        assert!(subnet.get("_used").is_none());
    }
}
