namespace Amber.Integration.Tests.Infrastructure;

/// <summary>A fresh directory per test, removed afterwards (kept when AMBER_KEEP_TEST_DIRS=1).</summary>
public sealed class TestDir : IDisposable
{
    public TestDir(string name)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"amber-it-{name}-{Guid.NewGuid():N}"[..Math.Min(48, 10 + name.Length + 12)]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>The inode number of <paramref name="path"/> (hard links and linked page files share one).</summary>
    public static ulong Inode(string path) =>
        Amber.Kernel.Files.FileStat.TryGet(path, out var st) ? st.Inode : throw new FileNotFoundException(path);

    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("AMBER_KEEP_TEST_DIRS") == "1")
            return;
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
