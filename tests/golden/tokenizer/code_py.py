import itertools
from collections import defaultdict


class Graph:
    """Adjacency lists; nodes are ints."""

    def __init__(self) -> None:
        self.edges: dict[int, list[int]] = defaultdict(list)

    def add(self, a: int, b: int) -> None:
        self.edges[a].append(b)
        self.edges[b].append(a)

    def bfs(self, start):
        seen, todo = {start}, [start]
        while todo:
            node = todo.pop(0)
            yield node
            for nxt in self.edges[node]:
                if nxt not in seen:
                    seen.add(nxt); todo.append(nxt)


if __name__ == "__main__":
    g = Graph()
    for a, b in itertools.pairwise(range(10)):
        g.add(a, b ** 2 % 7)
    print(list(g.bfs(0)), f"{len(g.edges)=}")
