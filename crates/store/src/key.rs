//! Key-space helpers shared by the backends: prefix ranges and the directory prefixes counted by
//! [`crate::Store::count`].

/// The smallest key greater than every key starting with `prefix` (etcd's `GetPrefixRangeEnd`):
/// the prefix with its last byte below 0xff incremented and everything after it dropped. An empty
/// result means "no upper bound" (the prefix is empty or all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    end
}

/// The directory prefixes of `key` that the embedded backend keeps a live count for: `""` and every
/// prefix ending in `/` (`/k8s/c1/`, `/k8s/c1/apps/`, ...). Counting a whole directory (the apiserver's
/// `remainingItemCount`, AWS quotas) is then one table read instead of a range scan.
pub(crate) fn dir_prefixes(key: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(key.match_indices('/').map(move |(i, _)| &key[..=i]))
}

/// True when `prefix` is one of the prefixes [`dir_prefixes`] counts.
pub(crate) fn is_dir_prefix(prefix: &str) -> bool {
    prefix.is_empty() || prefix.ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"/k8s/"), b"/k8s0".to_vec());
        assert_eq!(prefix_end(b"a\xff\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), Vec::<u8>::new());
        assert_eq!(prefix_end(b""), Vec::<u8>::new());
    }

    #[test]
    fn dir_prefixes_lists_every_directory_including_the_root() {
        let dirs: Vec<_> = dir_prefixes("/k8s/c1/pods/ns/a").collect();
        assert_eq!(
            dirs,
            [
                "",
                "/",
                "/k8s/",
                "/k8s/c1/",
                "/k8s/c1/pods/",
                "/k8s/c1/pods/ns/"
            ]
        );
        let dirs: Vec<_> = dir_prefixes("x/").collect();
        assert_eq!(dirs, ["", "x/"]);
        assert!(is_dir_prefix("") && is_dir_prefix("/a/") && !is_dir_prefix("/a"));
    }
}
