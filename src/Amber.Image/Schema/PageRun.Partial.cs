namespace Amber.Image.Schema;

public sealed partial class PageRun
{
    /// <summary>The page file that holds this run's pages.</summary>
    public PageFileRef StoredIn => new(Source, Layer);
}
