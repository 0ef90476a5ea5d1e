//! Names of users and groups, through the system's name service (NSS: `/etc/passwd`, LDAP,
//! ...), as `ls -l` and `ipcs` show owners.
//!
//! ```
//! assert_eq!(shmkit::users::user_name(0).as_deref(), Some("root"));
//! assert_eq!(shmkit::users::uid_by_name("root"), Some(0));
//! ```

/// The name of user `uid`, or `None` if the name service knows none.
#[doc(alias = "getpwuid_r")]
pub fn user_name(uid: u32) -> Option<String> {
    crate::platform::user_name(uid)
}

/// The name of group `gid`, or `None` if the name service knows none.
#[doc(alias = "getgrgid_r")]
pub fn group_name(gid: u32) -> Option<String> {
    crate::platform::group_name(gid)
}

/// The uid of the user called `name`, or `None` if there is no such user.
#[doc(alias = "getpwnam_r")]
pub fn uid_by_name(name: &str) -> Option<u32> {
    crate::platform::uid_by_name(name)
}
