//! Who may look up and register which names.

/// One rule of the registry's access list: the uids and gids it admits for names that start
/// with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// The names it covers (`""`: every name).
    pub prefix: String,
    /// Users it admits.
    pub uids: Vec<u32>,
    /// Groups it admits: a client's primary group or any of its supplementary groups, as of
    /// its `connect(2)` (`SO_PEERCRED`, `SO_PEERGROUPS`).
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

/// Who a client is, for the rules: its uid, and its primary and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Who {
    pub uid: u32,
    /// The primary group first.
    pub gids: Vec<u32>,
}

impl Who {
    fn in_rule(&self, r: &Rule) -> bool {
        r.uids.contains(&self.uid) || self.gids.iter().any(|g| r.gids.contains(g))
    }

    fn groups_text(&self) -> String {
        match self.gids.as_slice() {
            [g] => format!("gid {g}"),
            [g, rest @ ..] => format!(
                "gid {g}, groups {}",
                rest.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            [] => "no group".into(),
        }
    }
}

/// What a client asks to do with a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lookup,
    Register,
}

impl Policy {
    /// Whether any rule admits `who` to anything.
    pub(crate) fn mentions(&self, who: &Who) -> bool {
        self.rules.iter().any(|r| who.in_rule(r))
    }

    /// `Ok` if `who` may `op` the name `name` in a registry run by `owner`; else why not, in
    /// words that name the rule (or its absence).
    pub(crate) fn check(&self, owner: u32, who: &Who, op: Op, name: &str) -> Result<(), String> {
        if who.uid == owner {
            return Ok(());
        }
        let verb = match op {
            Op::Lookup => "look up",
            Op::Register => "register",
        };
        let mut lookup_only = None;
        for (i, r) in self.rules.iter().enumerate() {
            if !name.starts_with(&r.prefix) || !who.in_rule(r) {
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
                "uid {} ({}) may not {verb} {name:?}: the registry runs as uid {owner} and no \
                 rule of its config admits this uid or a group of it for this name",
                who.uid,
                who.groups_text()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(uid: u32, gid: u32) -> Who {
        Who {
            uid,
            gids: vec![gid],
        }
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
        assert!(p.check(1000, &who(1000, 1000), Op::Register, "x").is_ok());
        assert!(p
            .check(1000, &who(0, 0), Op::Lookup, "x")
            .unwrap_err()
            .contains("no rule"));
        assert!(p.check(1000, &who(1001, 1), Op::Lookup, "video/a").is_ok());
        assert!(p.check(1000, &who(5, 44), Op::Lookup, "video/a").is_ok());
        assert!(p.check(1000, &who(1001, 1), Op::Lookup, "audio/a").is_err());
        let e = p
            .check(1000, &who(1001, 1), Op::Register, "video/a")
            .unwrap_err();
        assert!(e.contains("rule 1") && e.contains("look up only"), "{e}");
        assert!(p
            .check(1000, &who(1002, 1), Op::Register, "video/cam0")
            .is_ok());
        // A supplementary group counts as the primary one does.
        let member = Who {
            uid: 7,
            gids: vec![7, 300, 44],
        };
        assert!(p.mentions(&member));
        assert!(p.check(1000, &member, Op::Lookup, "video/a").is_ok());
        let e = p.check(1000, &member, Op::Lookup, "audio/a").unwrap_err();
        assert!(e.contains("gid 7, groups 300,44"), "{e}");
    }
}
