using Amber.Kernel.Memory;

namespace Amber.Kernel.Tests;

public sealed class PageTests
{
    [Fact]
    public void PageSizeIsThisMachines() => Assert.Equal(Page.Size, Environment.SystemPageSize);
}
