//! The nine guard attributes: their names, what they take, and which guard they inject.

/// Which attribute is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    LoginRequired,
    FreshLogin,
    DeviceBound,
    HasRole,
    HasAnyRole,
    HasAllRoles,
    HasPermission,
    HasAnyPermission,
    HasAllPermissions,
}

/// What the string arguments of an attribute name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Noun {
    Role,
    Permission,
}

impl Noun {
    /// `"role"` / `"permission"`.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Noun::Role => "role",
            Noun::Permission => "permission",
        }
    }

    /// An example value, as it would be written in the attribute (with quotes).
    pub(crate) fn example(self) -> &'static str {
        match self {
            Noun::Role => "\"ADMIN\"",
            Noun::Permission => "\"orders:read\"",
        }
    }
}

/// How many strings an attribute takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arity {
    /// `#[login_required]`: none.
    None,
    /// `#[has_role("A")]`, `#[has_permission("p")]`: exactly one.
    One,
    /// `#[has_any_role("A", "B")]` and the other list forms: one or more.
    Many,
}

impl Kind {
    /// The attribute's name, as the user writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::LoginRequired => "login_required",
            Kind::FreshLogin => "fresh_login",
            Kind::DeviceBound => "device_bound",
            Kind::HasRole => "has_role",
            Kind::HasAnyRole => "has_any_role",
            Kind::HasAllRoles => "has_all_roles",
            Kind::HasPermission => "has_permission",
            Kind::HasAnyPermission => "has_any_permission",
            Kind::HasAllPermissions => "has_all_permissions",
        }
    }

    /// What the attribute's strings are; `None` for `#[login_required]`.
    pub(crate) fn noun(self) -> Option<Noun> {
        match self {
            Kind::LoginRequired | Kind::FreshLogin | Kind::DeviceBound => None,
            Kind::HasRole | Kind::HasAnyRole | Kind::HasAllRoles => Some(Noun::Role),
            Kind::HasPermission | Kind::HasAnyPermission | Kind::HasAllPermissions => {
                Some(Noun::Permission)
            }
        }
    }

    /// How many strings the attribute takes.
    pub(crate) fn arity(self) -> Arity {
        match self {
            Kind::LoginRequired | Kind::FreshLogin | Kind::DeviceBound => Arity::None,
            Kind::HasRole | Kind::HasPermission => Arity::One,
            _ => Arity::Many,
        }
    }

    /// The name of the policy type in `session_core::__private` that the guard is built on.
    pub(crate) fn policy(self) -> &'static str {
        match self {
            Kind::LoginRequired => "Login",
            Kind::FreshLogin => "FreshLogin",
            Kind::DeviceBound => "DeviceBound",
            Kind::HasRole | Kind::HasAnyRole => "AnyRole",
            Kind::HasAllRoles => "AllRoles",
            Kind::HasPermission | Kind::HasAnyPermission => "AnyPermission",
            Kind::HasAllPermissions => "AllPermissions",
        }
    }

    /// A correct use of the attribute, for error messages.
    pub(crate) fn usage(self) -> &'static str {
        match self {
            Kind::LoginRequired => "#[login_required]",
            Kind::FreshLogin => "#[fresh_login(max_age = \"5m\")]",
            Kind::DeviceBound => "#[device_bound]",
            Kind::HasRole => "#[has_role(\"ADMIN\")]",
            Kind::HasAnyRole => "#[has_any_role(\"ADMIN\", \"SUPPORT\")]",
            Kind::HasAllRoles => "#[has_all_roles(\"ADMIN\", \"SUPPORT\")]",
            Kind::HasPermission => "#[has_permission(\"orders:read\")]",
            Kind::HasAnyPermission => "#[has_any_permission(\"orders:read\", \"orders:write\")]",
            Kind::HasAllPermissions => "#[has_all_permissions(\"orders:read\", \"orders:write\")]",
        }
    }

    /// For the single-string forms: the list forms to suggest when more strings are given.
    pub(crate) fn plural_forms(self) -> &'static str {
        match self {
            Kind::HasRole => "`#[has_any_role(..)]` or `#[has_all_roles(..)]`",
            _ => "`#[has_any_permission(..)]` or `#[has_all_permissions(..)]`",
        }
    }
}
