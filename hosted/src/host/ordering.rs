//! The start order: a topological order of the `after` edges that, among the services free to
//! start, always picks the lowest `(order, name)`. It never depends on link or registration order.

use std::collections::{BTreeSet, HashMap};

use crate::registry::Problem;

/// What the ordering needs to know of one service.
pub(crate) struct Node<'a> {
    pub(crate) name: &'a str,
    pub(crate) order: i32,
    pub(crate) after: Vec<&'a str>,
}

/// The indices of `nodes` in start order, or every problem that prevents one.
pub(crate) fn start_order(nodes: &[Node<'_>]) -> Result<Vec<usize>, Vec<Problem>> {
    if nodes.iter().all(|node| node.after.is_empty()) {
        // Nothing waits on anything: the order is the sort by `(order, name)`, with no names to
        // look up and no set to keep.
        let mut ordered: Vec<usize> = (0..nodes.len()).collect();
        ordered.sort_by(|&a, &b| {
            (nodes[a].order, nodes[a].name, a).cmp(&(nodes[b].order, nodes[b].name, b))
        });
        return Ok(ordered);
    }
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(position, node)| (node.name, position))
        .collect();

    let mut problems = Vec::new();
    let mut waiting_on = vec![0_usize; nodes.len()];
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (position, node) in nodes.iter().enumerate() {
        for &predecessor in &node.after {
            match index.get(predecessor) {
                Some(&before) if before == position => problems.push(Problem::OrderCycle {
                    path: vec![node.name.to_owned(), node.name.to_owned()],
                }),
                Some(&before) => {
                    waiting_on[position] += 1;
                    successors[before].push(position);
                }
                None => problems.push(Problem::UnknownAfter {
                    service: node.name.to_owned(),
                    after: predecessor.to_owned(),
                    known: nodes.iter().map(|node| node.name.to_owned()).collect(),
                }),
            }
        }
    }
    let key = |position: usize| (nodes[position].order, nodes[position].name, position);
    let mut ready: BTreeSet<_> = (0..nodes.len())
        .filter(|&position| waiting_on[position] == 0)
        .map(key)
        .collect();
    let mut ordered = Vec::with_capacity(nodes.len());
    while let Some((_, _, position)) = ready.pop_first() {
        ordered.push(position);
        for &next in &successors[position] {
            waiting_on[next] -= 1;
            if waiting_on[next] == 0 {
                ready.insert(key(next));
            }
        }
    }
    if ordered.len() < nodes.len() {
        problems.push(Problem::OrderCycle {
            path: find_cycle(nodes, &index, &waiting_on),
        });
    }
    if problems.is_empty() {
        Ok(ordered)
    } else {
        Err(problems)
    }
}

/// A cycle among the services that could not be ordered, as names with the first repeated last.
fn find_cycle(
    nodes: &[Node<'_>],
    index: &HashMap<&str, usize>,
    waiting_on: &[usize],
) -> Vec<String> {
    // Every stuck node waits on another stuck node, so walking "after" edges through stuck
    // nodes must revisit one.
    let stuck = |position: usize| waiting_on[position] > 0;
    let mut current = (0..nodes.len())
        .find(|&position| stuck(position))
        .unwrap_or(0);
    let mut seen: Vec<usize> = Vec::new();
    while !seen.contains(&current) {
        seen.push(current);
        current = nodes[current]
            .after
            .iter()
            .filter_map(|name| index.get(name).copied())
            .find(|&position| stuck(position))
            .unwrap_or(current);
    }
    let start = seen
        .iter()
        .position(|&position| position == current)
        .unwrap_or(0);
    // `seen[start..]` lists each node followed by one it waits on; present the cycle in start
    // order instead: a service, then the one that starts after it.
    let mut path: Vec<String> = seen[start..]
        .iter()
        .rev()
        .map(|&position| nodes[position].name.to_owned())
        .collect();
    path.push(path[0].clone());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(name: &'a str, order: i32, after: &[&'a str]) -> Node<'a> {
        Node {
            name,
            order,
            after: after.to_vec(),
        }
    }

    fn names<'a>(nodes: &[Node<'a>]) -> Vec<&'a str> {
        start_order(nodes)
            .unwrap()
            .into_iter()
            .map(|position| nodes[position].name)
            .collect()
    }

    #[test]
    fn order_then_name_decide_among_free_services() {
        let nodes = [
            node("b", 0, &[]),
            node("a", 0, &[]),
            node("z", -1, &[]),
            node("c", 5, &[]),
        ];
        assert_eq!(names(&nodes), ["z", "a", "b", "c"]);
    }

    #[test]
    fn after_wins_over_order() {
        let nodes = [
            node("db", 10, &[]),
            node("api", 0, &["db"]),
            node("log", 0, &[]),
        ];
        assert_eq!(names(&nodes), ["log", "db", "api"]);
    }

    #[test]
    fn the_result_does_not_depend_on_registration_order() {
        let mut nodes = vec![
            node("a", 1, &[]),
            node("b", 0, &["a"]),
            node("c", 0, &[]),
            node("d", 0, &["c", "a"]),
        ];
        let expected = names(&nodes);
        nodes.reverse();
        assert_eq!(names(&nodes), expected);
        nodes.swap(0, 2);
        assert_eq!(names(&nodes), expected);
    }

    #[test]
    fn unknown_after_targets_are_reported() {
        let problems = start_order(&[node("a", 0, &["nope"])]).unwrap_err();
        assert!(matches!(&problems[..], [Problem::UnknownAfter { after, .. }] if after == "nope"));
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let nodes = [
            node("free", 0, &[]),
            node("a", 0, &["c"]),
            node("b", 0, &["a"]),
            node("c", 0, &["b"]),
        ];
        let problems = start_order(&nodes).unwrap_err();
        let [Problem::OrderCycle { path }] = &problems[..] else {
            panic!("expected one cycle, got {problems:?}")
        };
        assert_eq!(path.len(), 4);
        assert_eq!(path.first(), path.last());
        let mut members = path[..3].to_vec();
        members.sort();
        assert_eq!(members, ["a", "b", "c"]);
    }

    #[test]
    fn a_service_after_itself_is_a_cycle() {
        let problems = start_order(&[node("a", 0, &["a"])]).unwrap_err();
        assert!(matches!(&problems[..], [Problem::OrderCycle { path }] if path == &["a", "a"]));
    }
}
