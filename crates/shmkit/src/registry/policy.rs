//! Who may look up and register which names.

use crate::handle::Credentials;

/// One rule of the registry's access list: the uids and gids it admits for names that start
/// with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// The names it covers (`""`: every name).
    pub prefix: String,
    /// Users it admits.
    pub uids: Vec<u32>,
    /// Groups it admits (a client's primary group, as `SO_PEERCRED` reports it).
    pub gids: Vec<u32>,
    /// Whether the admitted may also register and unregister names, not only look them up.
    pub register: bool,
}

/// The access list. Without rules only the registry's own uid is admitted; root is no
/// exception unless a rule names uid 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The rules, tried in order.
    pub rules: Vec<Rule>,
}

/// What a client asks to do with a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lookup,
    Register,
}

impl Policy {
    /// Whether any rule admits `who` to anything.
    pub(crate) fn mentions(&self, who: Credentials) -> bool {
        self.rules
            .iter()
            .any(|r| r.uids.contains(&who.uid) || r.gids.contains(&who.gid))
    }

    /// `Ok` if `who` may `op` the name `name` in a registry run by `owner`; else why not, in
    /// words that name the rule (or its absence).
    pub(crate) fn check(
        &self,
        owner: u32,
        who: Credentials,
        op: Op,
        name: &str,
    ) -> Result<(), String> {
        if who.uid == owner {
            return Ok(());
        }
        let verb = match op {
            Op::Lookup => "look up",
            Op::Register => "register",
        };
        let mut lookup_only = None;
        for (i, r) in self.rules.iter().enumerate() {
            if !name.starts_with(&r.prefix)
                || !(r.uids.contains(&who.uid) || r.gids.contains(&who.gid))
            {
                continue;
            }
            if op == Op::Lookup || r.register {
                return Ok(());
            }
            lookup_only.get_or_insert(i);
        }
        Err(match lookup_only {
            Some(i) => format!(
                "uid {} may not {verb} {name:?}: rule {} (prefix {:?}) admits it to look up only \
                 (add `register = true` to the rule)",
                who.uid,
                i + 1,
                self.rules[i].prefix
            ),
            None => format!(
                "uid {} (gid {}) may not {verb} {name:?}: the registry runs as uid {owner} and no \
                 rule of its config admits this uid or gid for this name",
                who.uid, who.gid
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(uid: u32, gid: u32) -> Credentials {
        Credentials { pid: 1, uid, gid }
    }

    #[test]
    fn the_owner_is_admitted_others_only_by_a_rule_and_root_is_not_special() {
        let p = Policy {
            rules: vec![
                Rule {
                    prefix: "video/".into(),
                    uids: vec![1001],
                    gids: vec![44],
                    register: false,
                },
                Rule {
                    prefix: "video/cam".into(),
                    uids: vec![1002],
                    gids: vec![],
                    register: true,
                },
            ],
        };
        assert!(p.check(1000, who(1000, 1000), Op::Register, "x").is_ok());
        assert!(p
            .check(1000, who(0, 0), Op::Lookup, "x")
            .unwrap_err()
            .contains("no rule"));
        assert!(p.check(1000, who(1001, 1), Op::Lookup, "video/a").is_ok());
        assert!(p.check(1000, who(5, 44), Op::Lookup, "video/a").is_ok());
        assert!(p.check(1000, who(1001, 1), Op::Lookup, "audio/a").is_err());
        let e = p
            .check(1000, who(1001, 1), Op::Register, "video/a")
            .unwrap_err();
        assert!(e.contains("rule 1") && e.contains("look up only"), "{e}");
        assert!(p
            .check(1000, who(1002, 1), Op::Register, "video/cam0")
            .is_ok());
    }
}
