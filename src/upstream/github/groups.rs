//! Groups from organisation and team membership, and the `allowed_orgs` gate.
//!
//! A user's groups are the logins of their organisations (`acme`) and their teams as
//! `org:team-slug` (`acme:platform`). GitHub logins are case-insensitive, so matching is too.

use super::api::{Org, Team};
use super::config::OrgRule;
use crate::upstream::UpstreamError;

/// The groups of a user with these memberships.
pub(super) fn groups(orgs: &[Org], teams: &[Team]) -> Vec<String> {
    let mut groups: Vec<String> = orgs.iter().map(|o| o.login.clone()).collect();
    for team in teams {
        let org = &team.organization.login;
        // A team's organisation is a group even when /user/orgs did not list it.
        if !groups.iter().any(|g| g.eq_ignore_ascii_case(org)) {
            groups.push(org.clone());
        }
        groups.push(format!("{org}:{}", team.slug));
    }
    groups
}

/// Applies the allow-list: `Ok` with the groups within the allowed organisations, or
/// `Refused` when no rule matches. An empty list allows everyone and keeps every group.
pub(super) fn admit(
    login: &str,
    groups: Vec<String>,
    rules: &[OrgRule],
) -> Result<Vec<String>, UpstreamError> {
    if rules.is_empty() {
        return Ok(groups);
    }
    let matches = |rule: &OrgRule| {
        let wanted = rule.to_string();
        groups.iter().any(|g| g.eq_ignore_ascii_case(&wanted))
    };
    if !rules.iter().any(matches) {
        let list: Vec<String> = rules.iter().map(OrgRule::to_string).collect();
        return Err(UpstreamError::Refused(format!(
            "GitHub user `{login}` is not a member of any organisation or team in allowed_orgs ({})",
            list.join(", ")
        )));
    }
    // Memberships outside the allowed organisations are none of the apps' business.
    let in_allowed_org = |group: &String| {
        let org = group.split_once(':').map_or(group.as_str(), |(o, _)| o);
        rules.iter().any(|r| r.org.eq_ignore_ascii_case(org))
    };
    Ok(groups.into_iter().filter(in_allowed_org).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(login: &str) -> Org {
        Org {
            login: login.into(),
        }
    }

    fn team(org_login: &str, slug: &str) -> Team {
        Team {
            slug: slug.into(),
            organization: org(org_login),
        }
    }

    #[test]
    fn groups_are_orgs_and_org_team_pairs() {
        let g = groups(
            &[org("Acme"), org("oss")],
            &[team("Acme", "platform"), team("hidden", "ops")],
        );
        assert_eq!(g, ["Acme", "oss", "Acme:platform", "hidden", "hidden:ops"]);
    }

    #[test]
    fn the_allow_list_admits_by_org_or_team_and_filters_groups() {
        let g = groups(&[org("Acme"), org("oss")], &[team("Acme", "platform")]);
        let by_org = [OrgRule::parse("acme")];
        assert_eq!(
            admit("octo", g.clone(), &by_org).unwrap(),
            ["Acme", "Acme:platform"]
        );
        let by_team = [OrgRule::parse("acme:PLATFORM")];
        assert!(admit("octo", g.clone(), &by_team).is_ok());
        let other_team = [OrgRule::parse("acme:security")];
        let err = admit("octo", g.clone(), &other_team).unwrap_err();
        assert!(
            matches!(&err, UpstreamError::Refused(m) if m.contains("allowed_orgs (acme:security)")),
            "{err}"
        );
        assert_eq!(admit("octo", g.clone(), &[]).unwrap(), g);
    }
}
