//! The checks before anything starts: duplicate names and registrations, missing registrations,
//! scoped values captured by longer-lived ones, and registrations that need each other in a
//! circle. Every problem is collected; none stops the search for the others.

use std::any::TypeId;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use crate::di::{Dependencies, Requirement};
use crate::di::{Provider, ServiceLifetime};
use crate::registry::ServiceDescriptor;
use crate::registry::{CaptiveLink, Problem};

/// Services sharing a name. One hash lookup per service; only a repeated name allocates.
pub(crate) fn duplicate_names(services: &[ServiceDescriptor]) -> Vec<Problem> {
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(services.len());
    let mut repeated: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for (position, service) in services.iter().enumerate() {
        match first.entry(&service.name) {
            Entry::Vacant(entry) => {
                entry.insert(position);
            }
            Entry::Occupied(entry) => repeated
                .entry(&service.name)
                .or_insert_with(|| vec![services[*entry.get()].source])
                .push(service.source),
        }
    }
    repeated
        .into_iter()
        .map(|(name, sources)| Problem::DuplicateService {
            name: name.to_owned(),
            sources,
        })
        .collect()
}

pub(crate) fn declared(consumer: &str, declare: fn(&mut Dependencies)) -> Vec<Requirement> {
    let mut needs = Dependencies::new(consumer);
    declare(&mut needs);
    needs.into_requirements()
}

/// Missing, duplicate, captive and circular registrations, from what every consumer declares.
pub(crate) fn check_dependencies(
    services: &[ServiceDescriptor],
    providers: &[Provider],
) -> Vec<Problem> {
    let mut problems = duplicate_registrations(providers);
    let registered: HashMap<TypeId, usize> = providers
        .iter()
        .enumerate()
        .map(|(position, provider)| (provider.type_id, position))
        .collect();
    let provider_needs: Vec<Vec<Requirement>> = providers
        .iter()
        .map(|provider| declared(consumer_name(provider), provider.declare))
        .collect();

    let service_needs = services.iter().flat_map(|service| {
        service
            .declare
            .map(|declare| declared(&service.name, declare))
            .unwrap_or_default()
    });
    for requirement in service_needs.chain(provider_needs.iter().flatten().cloned()) {
        if !requirement.optional && !registered.contains_key(&requirement.type_id) {
            problems.push(Problem::MissingRegistration {
                consumer: requirement.consumer.clone(),
                parameter: requirement.parameter.map(str::to_owned),
                type_name: requirement.type_name.to_owned(),
            });
        }
    }

    let edges: Vec<Vec<usize>> = provider_needs
        .iter()
        .map(|needs| {
            needs
                .iter()
                .filter_map(|need| registered.get(&need.type_id).copied())
                .collect()
        })
        .collect();
    // A circle never hides a captive value: both checks run over the whole graph, and every
    // independent circle is reported.
    for cycle in find_cycles(&edges) {
        problems.push(Problem::DependencyCycle {
            path: cycle
                .into_iter()
                .map(|position| providers[position].type_name.to_owned())
                .collect(),
        });
    }
    problems.extend(captive_dependencies(providers, &edges));
    problems
}

/// For each service, whether its runs need a scope: something it resolves is scoped, or
/// transient with a dispose hook, directly or through transients. Runs of the others skip the
/// scope. Call only on registrations that passed the checks (no circles).
pub(crate) fn services_needing_scope(
    services: &[ServiceDescriptor],
    providers: &[Provider],
) -> Vec<bool> {
    let registered: HashMap<TypeId, usize> = providers
        .iter()
        .enumerate()
        .map(|(position, provider)| (provider.type_id, position))
        .collect();
    let edges: Vec<Vec<usize>> = providers
        .iter()
        .map(|provider| {
            declared(consumer_name(provider), provider.declare)
                .iter()
                .filter_map(|need| registered.get(&need.type_id).copied())
                .collect()
        })
        .collect();
    let mut needs = RunNeeds {
        providers,
        edges: &edges,
        known: HashMap::new(),
    };
    services
        .iter()
        .map(|service| {
            // A service that declares nothing may resolve anything: give its runs a scope.
            let Some(declare) = service.declare else {
                return true;
            };
            declared(&service.name, declare)
                .iter()
                .filter_map(|need| registered.get(&need.type_id).copied())
                .any(|position| needs.scope(position))
        })
        .collect()
}

/// Whether resolving a registration inside a run needs the run's scope.
struct RunNeeds<'a> {
    providers: &'a [Provider],
    edges: &'a [Vec<usize>],
    known: HashMap<usize, bool>,
}

impl RunNeeds<'_> {
    fn scope(&mut self, position: usize) -> bool {
        if let Some(&answer) = self.known.get(&position) {
            return answer;
        }
        // Provisional answer for a circle; circles are rejected before this runs.
        self.known.insert(position, false);
        let provider = &self.providers[position];
        let answer = match provider.lifetime {
            ServiceLifetime::Scoped => true,
            ServiceLifetime::Singleton => false,
            ServiceLifetime::Transient => {
                provider.disposable || self.edges[position].iter().any(|&next| self.scope(next))
            }
        };
        self.known.insert(position, answer);
        answer
    }
}

/// What a registration is called in messages: the item or call that registered it.
fn consumer_name(provider: &Provider) -> &str {
    if provider.owner.is_empty() {
        provider.type_name
    } else {
        &provider.owner
    }
}

fn duplicate_registrations(providers: &[Provider]) -> Vec<Problem> {
    let mut owners: BTreeMap<(&str, TypeId), Vec<&str>> = BTreeMap::new();
    for provider in providers {
        owners
            .entry((provider.type_name, provider.type_id))
            .or_default()
            .push(&provider.owner);
    }
    owners
        .into_iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|((type_name, _), owners)| Problem::DuplicateRegistration {
            type_name: type_name.to_owned(),
            owners: owners.into_iter().map(str::to_owned).collect(),
        })
        .collect()
}

/// Singletons that would hold a scoped value beyond its scope, directly or through transients.
/// Terminates on a graph with circles too (they are reported on their own).
fn captive_dependencies(providers: &[Provider], edges: &[Vec<usize>]) -> Vec<Problem> {
    let mut paths = ScopedPaths {
        providers,
        edges,
        known: HashMap::new(),
    };
    let mut problems = Vec::new();
    for (position, provider) in providers.iter().enumerate() {
        if provider.lifetime != ServiceLifetime::Singleton {
            continue;
        }
        for &next in &edges[position] {
            if let Some(path) = paths.from(next) {
                let chain = std::iter::once(position)
                    .chain(path)
                    .map(|link| CaptiveLink {
                        type_name: providers[link].type_name.to_owned(),
                        lifetime: providers[link].lifetime,
                        service: providers[link].service_type,
                    })
                    .collect();
                problems.push(Problem::CaptiveDependency { chain });
            }
        }
    }
    problems
}

/// For each registration, a path to a scoped registration that building it would capture.
struct ScopedPaths<'a> {
    providers: &'a [Provider],
    edges: &'a [Vec<usize>],
    known: HashMap<usize, Option<Vec<usize>>>,
}

impl ScopedPaths<'_> {
    fn from(&mut self, position: usize) -> Option<Vec<usize>> {
        if let Some(known) = self.known.get(&position) {
            return known.clone();
        }
        // Provisional answer while this registration is being explored, so a circle of
        // transients ends the search instead of recursing forever.
        self.known.insert(position, None);
        let path = match self.providers[position].lifetime {
            ServiceLifetime::Scoped => Some(vec![position]),
            ServiceLifetime::Singleton => None,
            ServiceLifetime::Transient => self.edges[position].iter().find_map(|&next| {
                self.from(next).map(|mut path| {
                    path.insert(0, position);
                    path
                })
            }),
        };
        self.known.insert(position, path.clone());
        path
    }
}

/// The circles of a directed graph, as node indices with the first repeated last: one for each
/// back edge whose circle shares no node with a circle already found, so two unrelated circles
/// are both reported and one tangle is reported once.
fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    struct Search<'a> {
        edges: &'a [Vec<usize>],
        marks: Vec<Mark>,
        stack: Vec<usize>,
        in_cycle: Vec<bool>,
        cycles: Vec<Vec<usize>>,
    }
    impl Search<'_> {
        fn visit(&mut self, node: usize) {
            self.marks[node] = Mark::Open;
            self.stack.push(node);
            for &next in &self.edges[node] {
                match self.marks[next] {
                    Mark::Open => {
                        let start = self.stack.iter().position(|&n| n == next).unwrap_or(0);
                        let cycle = &self.stack[start..];
                        if cycle.iter().all(|&n| !self.in_cycle[n]) {
                            for &n in cycle {
                                self.in_cycle[n] = true;
                            }
                            let mut cycle = cycle.to_vec();
                            cycle.push(next);
                            self.cycles.push(cycle);
                        }
                    }
                    Mark::New => self.visit(next),
                    Mark::Done => {}
                }
            }
            self.stack.pop();
            self.marks[node] = Mark::Done;
        }
    }
    let mut search = Search {
        edges,
        marks: vec![Mark::New; edges.len()],
        stack: Vec::new(),
        in_cycle: vec![false; edges.len()],
        cycles: Vec::new(),
    };
    for node in 0..edges.len() {
        if search.marks[node] == Mark::New {
            search.visit(node);
        }
    }
    search.cycles
}

#[cfg(test)]
mod tests {
    use super::find_cycles;

    #[test]
    fn cycles_are_found_with_their_path() {
        assert!(find_cycles(&[vec![1], vec![2], vec![]]).is_empty());
        assert_eq!(find_cycles(&[vec![1], vec![2], vec![1]]), [vec![1, 2, 1]]);
        assert_eq!(find_cycles(&[vec![0]]), [vec![0, 0]]);
    }

    #[test]
    fn unrelated_cycles_are_all_found_and_one_tangle_once() {
        assert_eq!(
            find_cycles(&[vec![1], vec![0], vec![3], vec![2]]),
            [vec![0, 1, 0], vec![2, 3, 2]]
        );
        assert_eq!(find_cycles(&[vec![1, 2], vec![0], vec![0]]).len(), 1);
    }
}
