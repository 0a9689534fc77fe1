global using Xunit;
global using Amber.Integration.Tests.Infrastructure;
