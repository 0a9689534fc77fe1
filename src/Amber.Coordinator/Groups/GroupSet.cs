namespace Amber.Coordinator.Groups;

/// <summary>The coordinator's groups by name; requests, registrations and the monitor use it from threads of their own.</summary>
public sealed class GroupSet
{
    private readonly Dictionary<string, GroupRuntime> _groups = [];
    private readonly object _lock = new();

    public GroupRuntime? Find(string name)
    {
        lock (_lock)
            return _groups.GetValueOrDefault(name);
    }

    /// <summary>The group of that name, made by <paramref name="create"/> if there is none (under the lock: two requests never make it twice).</summary>
    public GroupRuntime GetOrAdd(string name, Func<GroupRuntime> create)
    {
        lock (_lock)
        {
            if (!_groups.TryGetValue(name, out var group))
                _groups[name] = group = create();
            return group;
        }
    }

    public void Add(GroupRuntime group)
    {
        lock (_lock)
            _groups[group.Config.Name] = group;
    }

    public void Remove(string name)
    {
        lock (_lock)
            _groups.Remove(name);
    }

    /// <summary>The groups now (a copy: it may change as soon as it is taken).</summary>
    public List<GroupRuntime> All()
    {
        lock (_lock)
            return [.. _groups.Values];
    }
}
